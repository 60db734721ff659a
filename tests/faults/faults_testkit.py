"""Helpers of the fault catalogue (imported as a plain module: tests/ has no __init__.py).

Every input a fault test feeds fprt is made here or in the test, with known content: tiny PNG
datasets, small real ONNX models with crafted metadata, training folders with too few images.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("fprt: error:")]


def run_cli(args: list[str], capsys, monkeypatch) -> CliResult:
    """Run ``fprt ARGS`` in this process through the console entry point (``fprt.cli:main``)."""
    from fprt.cli import main

    monkeypatch.setattr(sys, "argv", ["fprt", *map(str, args)])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def assert_one_error_line(result: CliResult, *must_name: str) -> str:
    """The run failed with one ``fprt: error:`` line naming every string in ``must_name``; no traceback."""
    assert result.code != 0, (result.out, result.err)
    assert "Traceback" not in result.err, result.err
    lines = result.error_lines
    assert len(lines) == 1, result.err
    for name in must_name:
        assert name in result.err, (name, result.err)
    return lines[0]


def png(path: Path, value: int, size: int = 16, seed: int | None = None) -> Path:
    """A gray PNG: constant ``value`` or, with ``seed``, noise around it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size, size), value, np.uint8)
    if seed is not None:
        img = np.clip(img + np.random.default_rng(seed).normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def subsets_tree(root: Path, *, real: dict[str, int], generated: dict[str, int], test: int = 0, size: int = 16) -> Path:
    """train/real/<c>/…, train/generated/gen_<c>/… with the given counts per class (+ test/generated_unknown)."""
    n = 0
    for c, (name, k) in enumerate(real.items()):
        for i in range(k):
            png(root / "train" / "real" / name / f"r_{name}_{i:02d}.png", 40 + 60 * c, size, seed=n)
            n += 1
    for c, (name, k) in enumerate(generated.items()):
        for i in range(k):
            png(root / "train" / "generated" / f"gen_{name}" / f"g_{name}_{i:02d}.png", 40 + 60 * c, size, seed=n)
            n += 1
    for i in range(test):
        png(root / "test" / "generated_unknown" / f"u{i:03d}.png", 40 + 30 * (i % 3), size, seed=n)
        n += 1
    return root


def make_unreadable(path: Path, monkeypatch) -> Path:
    """Take away read permission on ``path``. Root reads every file whatever its mode, so there the
    file's ``open`` is made to fail with EACCES exactly as it fails for a user without permission."""
    import builtins
    import errno
    import os

    path.chmod(0)
    if not os.access(path, os.R_OK):
        return path
    real_open = builtins.open
    target = os.path.realpath(path)

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and os.path.realpath(file) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    return path


def small_membership_case(root: Path):
    """A membership dataset (train + test, 32×32) and a small ONNX model scoring it: (data, model)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
    from runtime_testkit import make_membership_data, make_onnx

    data = make_membership_data(root / "data", n_real=8, n_gen=10)
    model, _, _ = make_onnx(root / "m.onnx", task="membership", metric="cosine")
    return data, model
