"""`fprt score --ray auto` (issue 9) on demo data of both tasks: run.csv and scores.csv byte-identical to the
single-process run; the cluster run and a local run reuse each other's cache; a run whose embed actor and
similarity task are killed mid-run gives the same outputs; without --ray nothing about Ray is imported;
without Ray, --ray says how to install it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ray_testkit import ray_cluster  # noqa: F401  (the session fixture; skips its tests when Ray is missing)
from runtime_testkit import make_onnx

from fprt.errors import MissingDependencyError
from fprt.runtime import score

OUTPUTS = ("run.csv", "scores.csv")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Small demo datasets of both tasks (the demo helper's generator) and a real ONNX model for each."""
    from fprt.demo import make_demo_data

    root = tmp_path_factory.mktemp("ray-demo")
    sub = make_demo_data(root / "subsets", "subsets", classes=3, n_real=12, n_generated=12, n_test=10, size=64,
                         workers=1, progress=False).out
    mem = make_demo_data(root / "membership", "membership", n_used=20, n_not_used=20, n_generated=40, size=64,
                         workers=1, progress=False).out
    m_sub, _, _ = make_onnx(root / "sub.onnx", task="subsets", classes=("t1", "t2", "t3"), size=32, metric="l2")
    m_mem, _, _ = make_onnx(root / "mem.onnx", task="membership", size=32, metric="cosine")
    return {"subsets": (sub, m_sub, [None]), "membership": (mem, m_mem, [None, "vcmi-std", "vcmi-retrieval"])}


def cli(*args):
    from typer.testing import CliRunner

    from fprt.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def same_files(a: Path, b: Path):
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between {a} and {b}"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["subsets", "membership"])
def test_ray_auto_writes_the_same_files_as_a_local_run(ray_cluster, demo, task, tmp_path, monkeypatch):
    data, model, methods = demo[task]
    labels = data / "test" / "labels.csv"
    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path / "cache-local"))
    local = {m: score(model, data, tmp_path / f"local-{m}", method=m, labels=labels, plots=False) for m in methods}

    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path / "cache-ray"))  # the cluster run computes everything itself
    for i, m in enumerate(methods):
        out = tmp_path / f"ray-{m}"
        printed = cli("score", data, "--out", out, "--model", model, *(["--method", m] if m else []),
                      "--labels", labels, "--no-plots", "--ray", "auto", "--workers", 2)
        assert "throughput" in printed
        same_files(local[m].out, out)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["metrics"] == local[m].summary["metrics"]
        ray_info = summary["ray"]
        assert ray_info["cpus"] == 2 and ray_info["similarity"], ray_info
        if i == 0:  # every image embedded by the actors, written to the cache by them
            assert summary["counts"]["computed"] == summary["counts"]["images_total"] > 0
            assert ray_info["embed"]["actors"] == 2 and ray_info["embed"]["cached_by_workers"] == summary["counts"]["computed"]
        else:  # later methods reuse the cluster's cache: only the similarity step runs on Ray
            assert summary["counts"]["computed"] == 0

    # a local run on the cluster's cache computes nothing and writes the same files
    again = score(model, data, tmp_path / "local-again", method=methods[0], labels=labels, plots=False)
    assert again.summary["counts"]["computed"] == 0
    same_files(local[methods[0]].out, again.out)


@pytest.mark.slow
def test_killed_workers_do_not_change_the_outputs(ray_cluster, demo, tmp_path, monkeypatch):
    from fprt.runtime.distributed import score_on_ray
    from fprt.runtime.distributed.embed import KILL_ENV as KILL_EMBED
    from fprt.runtime.distributed.similarity import KILL_ENV as KILL_SHARD

    data, model, _ = demo["membership"]
    labels = data / "test" / "labels.csv"
    local = score(model, data, tmp_path / "local", method="vcmi-std", labels=labels, plots=False)

    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path / "cache-ray"))
    markers = {KILL_EMBED: tmp_path / "embed-killed", KILL_SHARD: tmp_path / "shard-killed"}
    for env, marker in markers.items():
        monkeypatch.setenv(env, str(marker))
    r = score_on_ray(model, data, tmp_path / "ray", ray="auto", actors=2, method="vcmi-std", labels=labels,
                     plots=False, batch_size=16)  # every file read (hashed, decoded) on the workers
    for marker in markers.values():  # an embed actor and a similarity worker died (SIGKILL) mid-run ...
        assert marker.exists(), f"{marker.name}: nothing was killed"
        with pytest.raises(ProcessLookupError):
            os.kill(int(marker.read_text()), 0)
    # ... Ray restarted the actor, retried its batch and the task, and the run finished the same
    same_files(local.out, r.out)
    assert r.summary["counts"]["computed"] == r.summary["counts"]["images_total"]
    assert r.summary["ray"]["embed"]["block_rows"] == 16  # several batches: the kill hit one mid-run
    assert r.summary["ray"]["files"] == "workers" and r.summary["timings"]["read_decode"]["items"] >= r.summary["counts"]["unique_files"]


def test_without_ray_flag_nothing_about_ray_is_imported(demo, tmp_path):
    data, model, _ = demo["subsets"]
    script = textwrap.dedent(f"""
        import sys
        from typer.testing import CliRunner
        from fprt.cli import app
        r = CliRunner().invoke(app, ["score", {str(data)!r}, "--out", {str(tmp_path / 'out')!r}, "--model", {str(model)!r},
                                     "--no-plots"])
        assert r.exit_code == 0, (r.output, r.exception)
        loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith(("ray.", "fprt.runtime.distributed")))
        print("LOADED", loaded)
    """)
    env = {**os.environ, "FPRT_CACHE_DIR": str(tmp_path / "cache"), "FPRT_NO_PROGRESS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOADED []" in out.stdout, out.stdout
    assert (tmp_path / "out" / "run.csv").exists()


def test_ray_flag_without_ray_says_how_to_install_it(demo, tmp_path, monkeypatch):
    data, model, _ = demo["subsets"]
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)  # `import ray` fails as if the extra were missing
    with pytest.raises(MissingDependencyError, match=r"pip install 'fprt\[ray\]'"):
        cli("score", data, "--out", tmp_path / "out", "--model", model, "--ray", "auto")
    assert not (tmp_path / "out" / "run.csv").exists()


def test_bad_ray_addresses_fail_fast_with_a_clear_message(demo, tmp_path):
    """A malformed address, and one where no Ray head listens (ray.init alone would retry for minutes)."""
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    from fprt.errors import FprtError
    from fprt.runtime.distributed.cluster import _check_reachable, _parse_address

    data, model, _ = demo["subsets"]
    with pytest.raises(FprtError, match="expected auto, HOST:PORT"):
        cli("score", data, "--out", tmp_path / "out", "--model", model, "--ray", "nonsense")
    assert _parse_address("ray://10.0.0.5:10001") == ("10.0.0.5", 10001) and _parse_address("ray") is None
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FprtError, match=f"no Ray head answers at 127.0.0.1:{port}"):
        _check_reachable(f"127.0.0.1:{port}", "127.0.0.1", port, timeout=5)
