"""End to end: fprt.runtime.score / `fprt score` on data and models the tests build.

run.csv in the submission format (validated), metric bars with labels, byte-identical reruns,
cache reuse across methods, bad files (stop before model work / skip + report), resume after a
killed run, and the CLI's error messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fprt.errors import DataError, FprtError
from fprt.runtime import score
from runtime_testkit import make_conv_onnx, make_membership_data, make_onnx, make_subsets_data


@pytest.fixture(scope="module")
def subsets_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("sub")
    data = make_subsets_data(root / "data", n_test=7)
    model, _, _ = make_onnx(root / "m.onnx", task="subsets", metric="l2")
    return data, model


@pytest.fixture(scope="module")
def membership_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("mem")
    data = make_membership_data(root / "data")
    model, _, _ = make_onnx(root / "m.onnx", task="membership", metric="cosine")
    return data, model


def _lines(path):
    return Path(path).read_text().splitlines()


def test_subsets_end_to_end(subsets_case, tmp_path):
    data, model = subsets_case
    r = score(model, data, tmp_path / "a", method="centroid", labels=data / "test" / "labels.csv", progress=False)
    assert r.method == "centroid"  # no centroids in the model → from the train split's real images
    # (without --method a training split makes ``auto`` the default: tests/runtime/test_auto_subsets.py)
    ids = sorted(p.stem for p in (data / "test" / "generated_unknown").iterdir())
    lines = _lines(r.run_csv)
    assert sorted(line.split(",")[0] for line in lines) == ids and len(lines) == len(ids)
    assert all(line.split(",")[1] in {"t1", "t2", "t3"} for line in lines)
    assert r.metrics["accuracy"] >= 0.9  # brightness cohorts: the pooled embedding separates them
    for name in ("scores.csv", "summary.json", "metrics.json", "confusion_matrix.png", "roc.png", "score_hist.png", "pca.png"):
        assert (tmp_path / "a" / name).exists(), name
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["model_sha256"] == r.summary["backend"]["model_sha256"]
    assert summary["counts"]["computed"] == summary["counts"]["images_total"]
    assert {"read", "hash", "decode", "infer", "store"} <= set(summary["timings"])
    assert summary["timings"]["read"]["items"] == summary["counts"]["unique_files"]  # each file read once
    assert set(summary["startup"]) >= {"imports_s", "model_load_s", "extension_load_s", "total_s"}
    assert not {"load_model", "model_load", "extension_load"} & set(summary["timings"])  # start-up costs are not stages
    from fprt.runtime.api import describe_result

    assert "; start-up " in describe_result(r) and "model " in describe_result(r)
    # the same run again: everything from the cache, byte-identical outputs
    r2 = score(model, data, tmp_path / "b", method="centroid", labels=data / "test" / "labels.csv", plots=False, progress=False)
    assert r2.summary["counts"]["computed"] == 0 and r2.summary["counts"]["cache_hits"] > 0
    assert r2.run_csv.read_bytes() == r.run_csv.read_bytes()
    assert r2.scores_csv.read_bytes() == r.scores_csv.read_bytes()
    # another method reuses the embeddings
    r3 = score(model, data, tmp_path / "c", method="knn", labels=data / "test" / "labels.csv", plots=False, progress=False)
    assert r3.metrics["accuracy"] >= 0.9
    assert r3.summary["counts"]["computed"] == 24  # only the generated training images were new
    assert r3.summary["counts"]["cache_hits"] == 21 + 24


def test_run_csv_variants(subsets_case, tmp_path):
    data, model = subsets_case
    r = score(model, data, tmp_path, csv_header="image_path,predicted_class", keep_extension=True, subset_labels="index",
              progress=False)
    lines = _lines(r.run_csv)
    assert lines[0] == "image_path,predicted_class"
    assert all(line.split(",")[0].endswith(".png") and line.split(",")[1] in {"1", "2", "3"} for line in lines[1:])
    with pytest.raises(FprtError, match="Did you mean 'index'"):
        score(model, data, tmp_path / "x", subset_labels="indx")
    with pytest.raises(FprtError, match="two column names"):
        score(model, data, tmp_path / "x", csv_header="just_one")


def test_validator_rejects_broken_files(tmp_path):
    from fprt.runtime.outputs import RunCsvFormat, validate_run_csv

    p = tmp_path / "run.csv"
    kw = dict(expected_ids=["a", "b", "c"], task="membership", classes=[], fmt=RunCsvFormat())
    p.write_text("a,1\nb,0\nc,1\n")
    validate_run_csv(p, **kw)
    for text, why in [("a,1\nb,0\n", "missing"), ("a,1\nb,0\nc,1\nc,0\n", "twice"), ("a,1\n\nb,0\nc,1\n", "blank"),
                      ("a,1\nb,2\nc,1\n", "label '2'"), ("a,1\nb,0\nc,1", "newline"), ("a,1\nb,0\nc,1\nd,1\n", "not test images"),
                      ("a, 1\nb,0\nc,1\n", "spaces"), ("a,1,x\nb,0\nc,1\n", "3 fields")]:
        p.write_text(text)
        with pytest.raises(FprtError, match=why):
            validate_run_csv(p, **kw)


def test_membership_end_to_end(membership_case, tmp_path):
    data, model = membership_case
    labels = data / "test" / "labels.csv"
    r = score(model, data, tmp_path / "a", labels=labels, progress=False)
    assert r.method == "auto"  # a training split is present: evidence fused on it
    assert r.summary["evidence"]["rows"] and r.metrics["roc_auc"] >= 0.9
    r = score(model, data, tmp_path / "a", method="max-sigma", labels=labels, progress=False, overwrite=True)
    lines = _lines(r.run_csv)
    assert len(lines) == 16 and {line.split(",")[1] for line in lines} <= {"0", "1"}
    assert r.metrics["roc_auc"] >= 0.9  # half the generated images are near-copies of used images
    for method in ("vcmi-max", "logreg", "vcmi-retrieval", "phash"):
        rm = score(None if method == "phash" else model, data, tmp_path / method, method=method, labels=labels,
                   plots=False, progress=False)
        assert rm.metrics["roc_auc"] >= 0.9, method
    header = _lines(tmp_path / "a" / "scores.csv")[0].split(",")
    assert header[:4] == ["image_id", "file", "decision", "score"] and "neighbours" in header


def test_pair_method(tmp_path):
    data = make_membership_data(tmp_path / "data", n_real=8, n_gen=16)
    model, _, _ = make_onnx(tmp_path / "p.onnx", kind="pair", task="membership")
    r = score(model, data, tmp_path / "out", method="pair", labels=data / "test" / "labels.csv", k=3, plots=False,
              progress=False)
    assert r.method == "pair"
    assert r.metrics["roc_auc"] >= 0.8
    assert (r.summary["method"]["params"]["threshold"]) == 0.5


def _break(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_bytes(b"this is not an image")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:60])


def test_bad_files_stop_lists_every_one_and_writes_nothing_or_skip(tmp_path):
    data = make_membership_data(tmp_path / "data", n_real=8, n_gen=10)
    model, _, _ = make_onnx(tmp_path / "m.onnx", task="membership")
    reals = sorted((data / "test" / "real_unknown").iterdir())
    gens = sorted((data / "test" / "generated").iterdir())
    _break(reals[1], "empty")
    _break(gens[3], "text")
    _break(gens[5], "truncated")
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        score(model, data, tmp_path / "stop", cache=cache, progress=False)
    msg = str(err.value)
    assert all(p.name in msg for p in (reals[1], gens[3], gens[5]))
    assert not (tmp_path / "stop").exists()  # nothing written
    assert list(cache.rglob("*.shard"))  # found while the model ran: the good files' embeddings are kept
    r = score(model, data, tmp_path / "skip", cache=cache, on_error="skip", progress=False)
    report = _lines(tmp_path / "skip" / "bad_files.csv")
    assert report[0] == "path,reason" and len(report) == 4
    ids = [line.split(",")[0] for line in _lines(r.run_csv)]
    assert len(ids) == 7 and reals[1].stem not in ids
    assert r.summary["counts"]["bad_files"] == 3


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fprt", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_cli_errors(membership_case, tmp_path):
    data, model = membership_case
    p = _cli("score", data, "--model", model, "--out", tmp_path, "--backend", "onnnx")
    assert p.returncode == 2 and "Did you mean 'onnx'" in p.stderr
    p = _cli("score", data, "--model", model, "--out", tmp_path, "--method", "vcmi_mx")
    assert p.returncode == 2 and "Did you mean 'vcmi-max'" in p.stderr
    p = _cli("score", data, "--model", model, "--out", tmp_path, "--method", "centroid")
    assert p.returncode == 2 and "subsets method but the data is a membership" in p.stderr
    p = _cli("score", data / "train", "--model", model, "--out", tmp_path)
    assert p.returncode == 2 and "training split only" in p.stderr


def _model_shards(cache: Path) -> int:
    """Shards of the model's own outputs (one per finished batch), not of a method's pixel features (``px-…``)."""
    return sum(1 for p in cache.rglob("*.shard") if not p.parent.name.startswith("px-"))


def test_resume_after_kill_gives_the_same_outputs(tmp_path):
    data = make_membership_data(tmp_path / "data", size=64, n_real=40, n_gen=160)
    model, _ = make_conv_onnx(tmp_path / "conv.onnx")
    cache = tmp_path / "cache"
    args = ["score", data, "--model", model, "--cache", cache, "--batch-size", "4", "--threads", "1", "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "fprt", *map(str, args), "--out", tmp_path / "killed"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and _model_shards(cache) < 5 and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _model_shards(cache)
    assert 5 <= done_before < 50 and not (tmp_path / "killed" / "run.csv").exists()
    resumed = _cli(*args, "--out", tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["counts"]["cache_hits"] >= 4 * (done_before - 1)  # the killed run's batches were kept
    fresh = _cli(*args[:-6], "--no-cache", "--batch-size", "16", "--out", tmp_path / "fresh")
    assert fresh.returncode == 0, fresh.stderr
    for name in ("run.csv", "scores.csv"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


@pytest.fixture(scope="module")
def demo_sets(tmp_path_factory):
    """Tiny fprt make-demo-data sets (64 px, seeded) of both tasks."""
    from fprt.demo import make_demo_data

    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root / "sub", "subsets", classes=3, n_real=10, n_generated=10, n_test=10, size=64, progress=False)
    make_demo_data(root / "mem", "membership", n_used=12, n_not_used=12, n_generated=40, size=64, progress=False)
    return root


def test_demo_data_both_tasks(demo_sets, tmp_path):
    """On make-demo-data sets, with an UNTRAINED model (fixed random projection of 4×4-pooled pixels):
    bars well above chance; trained models do far better (see make demo)."""
    sub, mem = demo_sets / "sub", demo_sets / "mem"
    model, _, _ = make_onnx(tmp_path / "s.onnx", task="subsets", size=64, pool=4, dim=64, metric="cosine")
    r = score(model, sub, tmp_path / "s", method="knn", labels=sub / "test" / "labels.csv", plots=False, progress=False)
    truth = _lines(sub / "test" / "labels.csv")
    assert sorted(line.split(",")[0] for line in _lines(r.run_csv)) == sorted(line.split(",")[0] for line in truth)
    assert r.metrics["accuracy"] >= 0.5  # chance: 1/3 (measured 0.67)
    model, _, _ = make_onnx(tmp_path / "m.onnx", task="membership", size=64, pool=4, dim=64, metric="cosine")
    r = score(model, mem, tmp_path / "m", method="max-sigma", labels=mem / "test" / "labels.csv", plots=False,
              progress=False)
    assert r.method == "max-sigma" and r.n_test == 24
    assert r.metrics["roc_auc"] >= 0.7  # chance: 0.5 (measured 0.81)
