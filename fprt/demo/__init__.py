"""Synthetic CT-like demo datasets in the ImageCLEFmedical GANs layouts (``fprt make-demo-data``).

Nothing can be downloaded, so fprt draws its own data: 256×256 8-bit axial chest-CT-like slices
(``phantom``), acquired with cohort-specific scanner protocols (``scanner``, ``cohorts``), and
"generated" images from simulated generators that restyle, move and warp anatomy and leave a weak
artefact of their own (``generators``). The membership generator memorises part of its training
images as transformed near-copies and blends. See ``plan`` for what each task contains.

    from fprt.demo import make_demo_data
    info = make_demo_data("demo/subsets", task="subsets", seed=0)
    info = make_demo_data("demo/membership", task="membership", n_used=50, n_not_used=50, n_generated=120)

Layouts (what ``fprt.data.discover`` reads):

    subsets     OUT/train/real/t1..tK/              OUT/train/generated/gen_t1..gen_tK/ (or t1..tK)
                OUT/test/generated_unknown/         OUT/test/labels.csv   (image_id,tK)
    membership  OUT/train/real/used/  OUT/train/real/not_used/  OUT/train/generated/
                OUT/test/real_unknown/  OUT/test/generated/     OUT/test/labels.csv   (image_id,1|0)

plus ``OUT/demo.json`` (every option, the seed, counts, cohorts, generators, fprt version and a
content hash of all images) and ``OUT/sources.csv`` (what each generated image was drawn from).
Same options → byte-identical files, whatever the number of worker processes.
``make_montage(OUT, "sheet.png")`` draws a contact sheet of real vs generated images to look at.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FprtError
from .montage import make_montage
from .plan import MEMBERSHIP_DEFAULTS, SUBSETS_DEFAULTS, TASKS, TRACE_MIX, Plan, plan_membership, plan_subsets


class DemoOptionError(FprtError, ValueError):
    """An option of ``make_demo_data`` / ``fprt make-demo-data`` is out of range or does not apply."""


@dataclass
class DemoInfo:
    """What ``make_demo_data`` wrote."""

    out: Path
    task: str
    seed: int
    counts: dict
    options: dict
    content_sha256: str
    seconds: float = 0.0
    layout: dict = field(default_factory=dict)

    @property
    def images(self) -> int:
        return int(self.counts.get("images", 0))

    def summary(self) -> str:
        rate = self.images / self.seconds if self.seconds > 0 else float("nan")
        parts = ", ".join(f"{k}={v}" for k, v in self.counts.items() if k != "images")
        return (f"wrote {self.images} images ({self.task}, seed {self.seed}) to {self.out} in {self.seconds:.1f} s "
                f"({rate:.0f} img/s): {parts}")


_SUBSETS_ONLY = ("classes", "n_real", "n_test", "separation")
_MEMBERSHIP_ONLY = ("n_used", "n_not_used", "n_test_used", "n_test_not_used", "n_test_generated", "copy_fraction",
                    "memorised_fraction", "blend_fraction")


def _layout(task: str, naming: str, k: int) -> dict:
    if task == "subsets":
        gen = [f"gen_t{i + 1}" if naming == "gen_t" else f"t{i + 1}" for i in range(k)]
        return {"train": {"real": [f"t{i + 1}" for i in range(k)], "generated": gen},
                "test": {"generated_unknown": "generated_unknown", "labels": "labels.csv"}}
    return {"train": {"real": ["used", "not_used"], "generated": "generated"},
            "test": {"real_unknown": "real_unknown", "generated": "generated", "labels": "labels.csv"}}


def make_demo_data(
    out: str | os.PathLike,
    task: str = "subsets",
    *,
    seed: int = 0,
    classes: int | None = None,
    n_real: int | None = None,
    n_generated: int | None = None,
    n_test: int | None = None,
    n_used: int | None = None,
    n_not_used: int | None = None,
    n_test_used: int | None = None,
    n_test_not_used: int | None = None,
    n_test_generated: int | None = None,
    copy_fraction: float | None = None,
    memorised_fraction: float | None = None,
    blend_fraction: float | None = None,
    artifact_strength: float = 1.0,
    separation: float | None = None,
    generated_naming: str = "gen_t",
    size: int = 256,
    compress_level: int = 6,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> DemoInfo:
    """Draw a demo dataset for ``task`` ("subsets" or "membership") into the folder ``out``.

    Counts left as ``None`` take the task's defaults (``plan.SUBSETS_DEFAULTS`` /
    ``plan.MEMBERSHIP_DEFAULTS``; membership test counts default to the training ones).
    ``workers``: processes drawing images (None = all cores for sets of 200+ images, else 1).
    ``progress``: tqdm bar on stderr (None = only on a terminal). ``overwrite`` replaces a non-empty
    ``out``; without it a non-empty ``out`` is an error. Returns a ``DemoInfo``.
    """
    from .. import __version__
    from . import writer

    if task not in TASKS:
        raise DemoOptionError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    given = {k: v for k, v in locals().items() if k in _SUBSETS_ONLY + _MEMBERSHIP_ONLY and v is not None}
    wrong = [k for k in given if k in (_MEMBERSHIP_ONLY if task == "subsets" else _SUBSETS_ONLY)]
    if wrong:
        other = "membership" if task == "subsets" else "subsets"
        raise DemoOptionError(f"option(s) {', '.join('--' + w.replace('_', '-') for w in wrong)} apply to "
                              f"--task {other} only, not {task}")
    if generated_naming not in ("gen_t", "t"):
        raise DemoOptionError(f"--generated-naming must be 'gen_t' or 't'; got {generated_naming!r}")
    if not 16 <= int(size) <= 4096:
        raise DemoOptionError(f"--size must be in [16, 4096]; got {size}")
    if not 0 <= int(compress_level) <= 9:
        raise DemoOptionError(f"--compress-level must be in [0, 9]; got {compress_level}")
    if artifact_strength < 0:
        raise DemoOptionError(f"--artifact-strength must be >= 0; got {artifact_strength}")

    def count(name: str, value, default, minimum: int = 0) -> int:
        v = default if value is None else value
        if int(v) != v or v < minimum:
            raise DemoOptionError(f"--{name.replace('_', '-')} must be an integer >= {minimum}; got {v!r}")
        return int(v)

    def frac(name: str, value, default) -> float:
        v = default if value is None else float(value)
        if not 0.0 <= v <= 1.0:
            raise DemoOptionError(f"--{name.replace('_', '-')} must be in [0, 1]; got {v!r}")
        return v

    if task == "subsets":
        d = SUBSETS_DEFAULTS
        opts = {
            "classes": count("classes", classes, d["classes"], 2),
            "n_real": count("n_real", n_real, d["n_real"]),
            "n_generated": count("n_generated", n_generated, d["n_generated"]),
            "n_test": count("n_test", n_test, d["n_test"]),
            "generated_naming": generated_naming,
            "artifact_strength": float(artifact_strength),
            "separation": float(1.0 if separation is None else separation),
        }
        if opts["separation"] < 0:
            raise DemoOptionError(f"--separation must be >= 0; got {separation}")
        plan: Plan = plan_subsets(seed=seed, **opts)
    else:
        d = MEMBERSHIP_DEFAULTS
        nu = count("n_used", n_used, d["n_used"])
        nn = count("n_not_used", n_not_used, d["n_not_used"])
        ng = count("n_generated", n_generated, d["n_generated"])
        opts = {
            "n_used": nu,
            "n_not_used": nn,
            "n_generated": ng,
            "n_test_used": count("n_test_used", n_test_used, nu),
            "n_test_not_used": count("n_test_not_used", n_test_not_used, nn),
            "n_test_generated": count("n_test_generated", n_test_generated, ng),
            "copy_fraction": frac("copy_fraction", copy_fraction, d["copy_fraction"]),
            "memorised_fraction": frac("memorised_fraction", memorised_fraction, d["memorised_fraction"]),
            "blend_fraction": frac("blend_fraction", blend_fraction, d["blend_fraction"]),
            "artifact_strength": float(artifact_strength),
        }
        plan = plan_membership(seed=seed, **opts)
    opts.update(size=int(size), compress_level=int(compress_level))

    n = len(plan.jobs)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if n >= 200 else 1
    if workers < 0:
        raise DemoOptionError(f"--workers must be >= 0 (0 = all cores); got {workers}")
    if workers == 0:
        workers = os.cpu_count() or 1

    out = Path(out).absolute()
    t0 = time.perf_counter()
    tmp = writer.begin(out, overwrite)
    try:
        hashes = writer.run_jobs(plan.jobs, tmp, size=int(size), compress_level=int(compress_level),
                                 workers=int(workers), progress=progress, desc=f"make-demo-data {task}")
        writer.write_labels(tmp / "test" / "labels.csv", plan.labels)
        writer.write_sources(tmp / "sources.csv", plan.sources)
        digest = writer.content_hash(hashes)
        layout = _layout(task, generated_naming, opts.get("classes", 0))
        meta = {
            "fprt_version": __version__,
            "created_by": "fprt make-demo-data",
            "task": task,
            "seed": int(seed),
            "options": opts,
            "counts": plan.counts,
            **({"trace_mix": {"of": "non-blend copies", **dict(TRACE_MIX)}} if task == "membership" else {}),
            "layout": layout,
            "labels": {"file": "test/labels.csv", "format": "image_id,label (no header)",
                       "values": ("t1..tK" if task == "subsets" else "1 = used, 0 = not used")},
            "content_sha256": digest,
            "cohorts": [c.to_dict() for c in plan.cohorts],
            "generators": {k: g.to_dict() for k, g in plan.generators.items()},
        }
        from ..io import atomic_write_json

        atomic_write_json(tmp / "demo.json", meta)
        writer.commit(tmp, out, overwrite)
    except BaseException:
        writer.abort(tmp)
        raise
    return DemoInfo(out=out, task=task, seed=int(seed), counts=plan.counts, options=opts, content_sha256=digest,
                    seconds=time.perf_counter() - t0, layout=layout)


__all__ = ["DemoInfo", "DemoOptionError", "make_demo_data", "make_montage"]
