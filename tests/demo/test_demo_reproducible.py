"""Same options → byte-identical PNGs, whatever the number of worker processes; bigger sets extend smaller ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fprt.demo import make_demo_data


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


TINY_SUBSETS = {"classes": 3, "n_real": 3, "n_generated": 3, "n_test": 2}
TINY_MEMBERSHIP = {"n_used": 4, "n_not_used": 3, "n_generated": 8, "n_test_used": 3, "n_test_not_used": 3,
                   "n_test_generated": 6}


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path):
    for task, kw, workers in (("subsets", TINY_SUBSETS, 2), ("membership", TINY_MEMBERSHIP, 1)):
        a = make_demo_data(tmp_path / f"{task}_a", task, seed=5, workers=1, progress=False, **kw)
        b = make_demo_data(tmp_path / f"{task}_b", task, seed=5, workers=workers, progress=False, **kw)
        ha, hb = _hashes(a.out), _hashes(b.out)
        assert ha == hb  # every file, demo.json, labels.csv and sources.csv included
        assert a.content_sha256 == b.content_sha256
        assert len([k for k in ha if k.endswith(".png")]) == a.images
    c = make_demo_data(tmp_path / "membership_c", "membership", seed=6, workers=1, progress=False, **TINY_MEMBERSHIP)
    hc = _hashes(c.out)
    pngs = [k for k in ha if k.endswith(".png") and not k.startswith("test/")]
    assert pngs and all(ha[k] != hc[k] for k in pngs)  # another seed: other images under the same names


def test_bigger_set_extends_smaller_one(tmp_path: Path):
    small = make_demo_data(tmp_path / "small", "subsets", seed=2, classes=2, n_real=2, n_generated=1, n_test=0,
                           workers=1, progress=False)
    big = make_demo_data(tmp_path / "big", "subsets", seed=2, classes=2, n_real=4, n_generated=3, n_test=2,
                         workers=1, progress=False)
    hs, hb = _hashes(small.out), _hashes(big.out)
    shared = [k for k in hs if k.endswith(".png")]
    assert len(shared) == 2 * 2 + 2 * 1
    assert all(hs[k] == hb[k] for k in shared)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_start_methods_give_the_same_bytes(tmp_path: Path, monkeypatch, method: str):
    import multiprocessing as mp

    from fprt.demo import writer

    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available on this platform")
    kw = dict(seed=8, classes=2, n_real=4, n_generated=4, n_test=2, progress=False)
    serial = make_demo_data(tmp_path / "serial", "subsets", workers=1, **kw)
    monkeypatch.setattr(writer, "START_METHOD", method)
    pooled = make_demo_data(tmp_path / method, "subsets", workers=2, **kw)
    assert _hashes(serial.out) == _hashes(pooled.out)


def test_script_without_main_guard_runs_once(tmp_path: Path):
    """A plain script calling make_demo_data with workers at top level: no re-run of its code, no hang."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    log = tmp_path / "ran.txt"
    script.write_text(
        "from fprt.demo import make_demo_data\n"
        f"open({str(log)!r}, 'a').write('ran\\n')\n"
        f"make_demo_data({str(tmp_path / 'out')!r}, 'subsets', classes=2, n_real=3, n_generated=3, n_test=2, "
        "workers=2, progress=False)\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert log.read_text() == "ran\n"
    assert len(list((tmp_path / "out").rglob("*.png"))) == 16
