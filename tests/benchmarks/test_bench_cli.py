"""``fprt bench`` end to end on a tiny model: the table's structure and sanity (never timings), its cosine and
accuracy columns against independent recomputations (onnxruntime / PyTorch directly, nearest centroid by hand),
and the option errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fprt.cli import app
from fprt.errors import FprtError

BATCHES = [1, 3]


@pytest.fixture(scope="module")
def bench_run(tiny_bench_setup, tmp_path_factory):
    """One `fprt bench RUN --data DATA` (shared by the tests of this module), with its own cache folder."""
    data, run = tiny_bench_setup
    root = tmp_path_factory.mktemp("bench-cli")
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FPRT_CACHE_DIR", str(root / "cache"))
        result = CliRunner().invoke(app, ["bench", str(run), "--data", str(data), "--batch-sizes", ",".join(map(str, BATCHES)),
                                          "--rounds", "2", "--images", "6", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((out / "bench.json").read_text())
    return {"data": data, "run": run, "out": out, "output": result.output, "report": report, "cache": root / "cache"}


def _rows(report, key):
    return [r for r in report["rows"] if f"{r['format']}-{r['precision']}" == key]


def _variant(report, key):
    return next(v for v in report["variants"] if v["key"] == key)


def test_every_format_and_precision_has_a_row(bench_run):
    from fprt.formats import FORMATS

    report = bench_run["report"]
    keys = {f"{r['format']}-{r['precision']}" for r in report["rows"]}
    assert keys == {f"{f.name}-{p}" for f in FORMATS for p in f.precisions}  # the loop is driven by the format table
    for key in ("torch-fp32", "onnx-fp32", "onnx-int8"):
        rows = _rows(report, key)
        assert [r["batch"] for r in rows] == BATCHES and all(r["status"] == "ok" for r in rows), rows
        for r in rows:
            assert r["rounds"] == 2
            assert 0 < r["p50_ms"] <= r["p99_ms"]
            assert r["images_per_s"] == pytest.approx(r["batch"] / (r["p50_ms"] / 1e3), rel=1e-9)
            assert r["size_mb"] > 0
    for key, words in {"tensorrt-fp32": "GPU", "tensorrt-fp16": "GPU", "torch-fp16": "GPU", "torch-bf16": "GPU",
                       "onnx-fp16": "--precisions fp16"}.items():
        (row,) = _rows(report, key)
        assert row["status"] == "skipped" and words in row["reason"] and row["batch"] is None, row
    # the speed reference is PyTorch fp32 at the same batch
    assert report["speed_reference"] == "torch-fp32" and report["drift_reference"] == "torch-fp32"
    assert all(r["speedup"] == pytest.approx(1.0) for r in _rows(report, "torch-fp32"))
    for key in ("onnx-fp32", "onnx-int8"):
        for r, ref in zip(_rows(report, key), _rows(report, "torch-fp32")):
            assert r["speedup"] == pytest.approx(r["images_per_s"] / ref["images_per_s"])
    # INT8 weights take about a quarter of the fp32 file
    assert _rows(report, "onnx-int8")[0]["size_mb"] < 0.5 * _rows(report, "onnx-fp32")[0]["size_mb"]
    assert report["machine"]["physical_cores"] >= 1 and report["threads"] == report["machine"]["physical_cores"]
    assert report["command"].startswith("fprt bench") or "bench" in report["command"]


def test_cosine_column_matches_an_independent_recomputation(bench_run):
    """cos min of each ONNX variant = min over the same images of cosine(ORT outputs, PyTorch outputs), recomputed here."""
    import onnxruntime as ort
    import torch

    from fprt.runtime.bench import eval_images
    from fprt.trainer import load_checkpoint

    report = bench_run["report"]
    model, meta = load_checkpoint(bench_run["run"])
    pixels, _ = eval_images(meta, bench_run["data"], 6, 0)
    x = meta.preprocess.normalize_uint8(pixels)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy().astype(np.float64)
    for key, low in (("onnx-fp32", 0.9999), ("onnx-int8", 0.98)):
        path = _variant(report, key)["path"]
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feed = pixels[:, None] if sess.get_inputs()[0].type == "tensor(uint8)" else x  # fprt bench exports uint8 input
        got = sess.run(None, {"image": feed})[0].astype(np.float64)
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        row = _rows(report, key)[0]
        assert row["cos_min"] == pytest.approx(cos.min(), abs=1e-6)
        assert row["cos_mean"] == pytest.approx(cos.mean(), abs=1e-6)
        assert low <= row["cos_min"] <= 1 + 1e-9
    assert _rows(report, "torch-fp32")[0]["cos_min"] is None  # the reference itself


def test_accuracy_column_matches_nearest_centroid_by_hand(bench_run):
    import torch

    from fprt.data import discover, iter_batches, read_labels
    from fprt.trainer import load_checkpoint

    report = bench_run["report"]
    model, meta = load_checkpoint(bench_run["run"])
    layout = discover(bench_run["data"])
    labels = read_labels(bench_run["data"] / "test" / "labels.csv")
    paths = sorted(layout.test_generated)
    px = np.concatenate([b.pixels for b in iter_batches(paths, meta.preprocess, 64, 0)])
    with torch.inference_mode():
        emb = model(torch.from_numpy(meta.preprocess.normalize_uint8(px))).numpy()
    cents = np.asarray(meta.centroids)
    pred = [meta.class_names[i] for i in np.argmin(((emb[:, None] - cents[None]) ** 2).sum(-1), axis=1)]
    expected = np.mean([p == labels[path.stem] for p, path in zip(pred, paths)])
    assert _rows(report, "torch-fp32")[0]["accuracy"] == pytest.approx(expected)
    assert _rows(report, "onnx-fp32")[0]["accuracy"] == pytest.approx(expected)  # parity-checked graph: same decisions
    assert 0 <= _rows(report, "onnx-int8")[0]["accuracy"] <= 1
    assert _variant(report, "torch-fp32")["metrics"]["method"] == "centroid"


def test_table_is_printed_and_written_as_markdown(bench_run):
    from fprt.runtime.bench import COLUMNS

    report, out, text = bench_run["report"], bench_run["out"], bench_run["output"]
    assert "fprt bench — siamese_cnn on cpu" in text and "wrote" in text
    md = (out / "bench.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0] == "| " + " | ".join(COLUMNS) + " |"
    assert len(table) == 1 + len(report["rows"])
    assert all(line.count("|") == len(COLUMNS) + 1 for line in table)
    assert "machine:" in md and "command:" in md and "load average" in md
    assert not list(out.glob(".*"))  # atomic writes leave no temporary files


def test_onnx_model_is_timed_at_its_own_precision(bench_run):
    """MODEL = an ONNX file: PyTorch and the other precisions are skipped with the reason; synthetic images without --data."""
    from fprt.runtime.bench import run_bench

    onnx_path = _variant(bench_run["report"], "onnx-fp32")["path"]
    report = run_bench(onnx_path, batch_sizes="2", backends="onnx,torch", rounds=1, images=4, accuracy=False)
    status = {v.key: (v.status, v.reason) for v in report.variants}
    assert status["onnx-fp32"] == ("ok", "")
    assert status["torch-fp32"][0] == "skipped" and "training run" in status["torch-fp32"][1]
    assert status["onnx-int8"][0] == "skipped" and "fp32 ONNX file" in status["onnx-int8"][1]
    assert "tensorrt-fp32" not in status  # --backends filters the table
    assert "synthetic" in report.images and report.source == "onnx"
    (row,) = [r for r in report.rows if r.status == "ok"]
    assert row.batch == 2 and row.speedup == pytest.approx(1.0) and report.speed_reference == "onnx-fp32"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "0"], "batch sizes must be ≥ 1"),
        (["--batch-sizes", "1,x"], "not a whole number"),
        (["--backends", "onx"], "Did you mean 'onnx'"),
        (["--precisions", "fp64"], "unknown precision 'fp64'"),
    ],
)
def test_bad_options_name_the_option(tiny_bench_setup, tmp_path, args, message):
    _, run = tiny_bench_setup
    result = CliRunner().invoke(app, ["bench", str(run), "--out", str(tmp_path / "out"), *args])
    assert isinstance(result.exception, FprtError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_gpu_plan_from_the_format_table(tiny_bench_setup):
    """What --device cuda would run (planning only; no GPU needed): no INT8 QDQ on the GPU, torch half precisions on,
    TensorRT skipped with the install hint when the package is missing."""
    import importlib.util

    from fprt.runtime.bench import _load_source, plan_variants

    data, run = tiny_bench_setup
    plan = {v.key: v for v in plan_variants(_load_source(run), device="cuda", backends=None, precisions=None, calib=data)}
    assert plan["onnx-int8"].status == "skipped" and "CPU EP" in plan["onnx-int8"].reason
    for key in ("torch-fp32", "torch-fp16", "torch-bf16", "onnx-fp32", "onnx-fp16"):
        assert plan[key].status == "ok", plan[key]
    if importlib.util.find_spec("tensorrt") is None:
        assert plan["tensorrt-fp32"].status == "skipped" and "pip install 'fprt[gpu]'" in plan["tensorrt-fp32"].reason
    cpu = {v.key: v for v in plan_variants(_load_source(run), device="cpu", backends=None, precisions=["fp16", "int8"], calib=None)}
    assert set(cpu) == {"torch-fp16", "onnx-fp16", "onnx-int8", "tensorrt-fp16"}
    assert cpu["onnx-fp16"].status == "ok"  # asked for by name: timed on the CPU too
    assert cpu["onnx-int8"].status == "skipped" and "calibration images" in cpu["onnx-int8"].reason


def test_cuda_without_a_gpu_is_a_clear_error(tiny_bench_setup, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda is valid here")
    from fprt.errors import MissingDependencyError
    from fprt.runtime.bench import run_bench

    with pytest.raises(MissingDependencyError, match="--device cuda"):
        run_bench(tiny_bench_setup[1], device="cuda")


def test_missing_model_is_a_clear_error(tmp_path):
    from fprt.errors import ModelError
    from fprt.runtime.bench import run_bench

    with pytest.raises(ModelError, match="no such"):
        run_bench(tmp_path / "nothing.onnx")
