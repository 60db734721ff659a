"""The Python half of ``benchmarks/gpu.sh`` (the shell script stays argument handling and commands).

    python benchmarks/gpu_tools.py check          # tools, imports, CUDA_HOME, GPU: KEY=VALUE lines (PROBLEM=... on failure)
    python benchmarks/gpu_tools.py build-ext      # build / load fprt's CUDA similarity extension just in time
    python benchmarks/gpu_tools.py suite-model    # the suite's Siamese CNN run folder (benchmarks/conftest.py)
    python benchmarks/gpu_tools.py report DIR     # DIR/GPU.md from what gpu.sh left in DIR
    python benchmarks/gpu_tools.py schedule BUDGET        # the steps and their time limits if each takes its estimate
    python benchmarks/gpu_tools.py step-limit STEP ELAPSED BUDGET   # "run SECONDS" or "skip WHY" (gpu.sh asks before each step)
    python benchmarks/gpu_tools.py trt-parity ONNX DIR    # TensorRT fp32 + fp16 engines vs ONNX Runtime -> DIR/trt.json
    python benchmarks/gpu_tools.py demo DIR               # demo data + 2-epoch GPU training + ONNX export in DIR
    python benchmarks/gpu_tools.py score DEMO_DIR OUT     # fprt score --device cuda (ONNX Runtime, then the engine)

``report`` reads ``run.txt`` (date, command, GPU), ``steps.tsv`` (each step's status and seconds),
``gpu-tests.xml`` (pytest -m gpu), ``trt.json``, ``bench_similarity.json`` (written by
benchmarks/conftest.py) and the ``fprt score --device cuda`` summaries; a missing piece is listed as
missing, never invented.

Time budget: gpu.sh runs STEPS in order within ``--budget`` seconds (default 480 = 8 minutes, the most one
GPU loan should spend on it). Before each step it asks ``step_limit``: the step runs with a timeout of at most
twice its estimate and never past the budget minus the report's reserve; a step that cannot get its minimum
is skipped and recorded as such, so the script always ends with a GPU.md in time.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ("fprt", "fprt.cli", "fprt.formats", "fprt.runtime.bench", "fprt.export.bench", "fprt.runtime.extension_loader",
           "torch", "onnxruntime", "pytest", "pytest_benchmark", "rich")
FILES = ("benchmarks/bench_similarity.py", "benchmarks/bench_latency.py", "benchmarks/conftest.py", "cpp_ext/build_config.py")

# (step, estimate on one H100/H200 in seconds, minimum worth starting with, what it does) - in order of value
STEPS = [
    ("build", 60, 20, "load the CUDA extension, building it just in time for this GPU if the prebuilt one does not fit"),
    ("gpu-tests", 90, 30, "pytest -m gpu: CUDA similarity vs CPU, TensorRT, ONNX Runtime CUDA EP"),
    ("demo", 45, 30, "demo data + a Siamese CNN trained 2 epochs on the GPU + its ONNX export"),
    ("tensorrt", 75, 40, "fprt build-engine fp32 and fp16 of the demo model, parity against ONNX Runtime"),
    ("similarity", 90, 40, "bench_similarity GPU: row, column, stats, groups, streamed vs cuBLAS GEMM and torch"),
    ("score", 40, 20, "fprt score --device cuda end to end (ONNX Runtime CUDA EP and the TensorRT engine)"),
]
REPORT_RESERVE = 15
DEFAULT_BUDGET = 480


def _time_scale() -> float:
    """FPRT_GPU_TIME_SCALE shrinks every estimate, minimum and the reserve (tests run gpu.sh's budget logic in
    seconds with stand-in commands); 1 otherwise."""
    return float(os.environ.get("FPRT_GPU_TIME_SCALE") or 1.0)


def step_limit(step: str, elapsed: float, budget: float) -> tuple[bool, int, str]:
    """(run?, timeout in seconds, why not): a step gets at most twice its estimate and never more than the
    budget left after the report's reserve; it is skipped when that is below its minimum."""
    table = {name: (est, least) for name, est, least, _ in STEPS}
    if step not in table:
        raise ValueError(f"unknown step {step!r}: expected one of {', '.join(table)}")
    scale = _time_scale()
    est, least = table[step][0] * scale, table[step][1] * scale
    left = budget - elapsed - REPORT_RESERVE * scale
    limit = int(min(2 * est, left))
    if limit < max(least, 1):
        return False, 0, f"time budget: {max(0, int(left))} s left of {int(budget)} s, the step needs at least {max(least, 1):g} s"
    return True, limit, ""


def schedule(budget: float) -> list[tuple[str, str]]:
    """What gpu.sh would do if every step took exactly its estimate: [(step, "run, limit N s" | "skip: ...")]."""
    elapsed, out = 0.0, []
    for name, est, _, _ in STEPS:
        ok, limit, why = step_limit(name, elapsed, budget)
        est = est * _time_scale()
        if ok:
            out.append((name, f"run, limit {limit} s (estimate {est:g} s)"))
            elapsed += min(est, limit)
        else:
            out.append((name, f"skip: {why}"))
    return out


SIMILARITY_GOALS = {
    # issue 6: bf16 row top-10 within 1.5× a bare cuBLAS bf16 GEMM, and ≥ 3× faster than tiled torch matmul + topk
    "fprt_cuda_bf16_top10/cublas_bf16_gemm": ("≤ 1.5", lambda r: r <= 1.5),
    "fprt_cuda_bf16_top10/torch_cuda_bf16_top10": ("≤ 0.33", lambda r: r <= 1 / 3),
}


def _load(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def similarity_section(doc) -> list[str]:
    lines = ["## Similarity on the GPU (bench_similarity.py)", ""]
    if not doc:
        return lines + ["_missing: no bench_similarity.json in this folder (the similarity step did not run or failed)_", ""]
    times = {}
    ratios = {}
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info", {})
        name = b["name"].removeprefix("test_")
        if b.get("stats", {}).get("min") is not None and name != "summary":
            times[name] = b["stats"]["min"]
        for k, v in info.items():
            if "/" in k and isinstance(v, (int, float)):
                ratios[k] = v
    lines += ["| benchmark | best time (s) |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(times.items())]
    lines += ["", "| ratio (time / time) | value | goal |", "|---|---|---|"]
    for k, v in sorted(ratios.items()):
        goal, ok = SIMILARITY_GOALS.get(k, ("", None))
        verdict = "" if ok is None else (" (met)" if ok(v) else " (NOT met)")
        lines.append(f"| {k} | {v:.3f} | {goal}{verdict} |")
    return lines + [""]


def latency_section(doc) -> list[str]:
    lines = ["## Model latency on the GPU (bench_latency.py)", ""]
    if not doc:
        return lines + ["_missing: no bench_latency.json in this folder_", ""]
    lines += ["| device | batch | variant | p50 ms | p99 ms | img/s | × ref |", "|---|---|---|---|---|---|---|"]
    notes = set()
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info", {})
        for r in info.get("rows", []):
            lines.append(f"| {info.get('device')} | {r['batch']} | {r['format']} {r['precision']} | {r['p50_ms']:.2f} | "
                         f"{r['p99_ms']:.2f} | {r['images_per_s']:.1f} | {r['speedup'] or 0:.2f} |")
        for key, why in (info.get("not_run") or {}).items():
            notes.add(f"- {key}: {why}")
    return lines + [""] + sorted(notes) + [""]


def steps_section(folder: Path) -> list[str]:
    lines = ["## Steps", "", "| step | status | seconds | note |", "|---|---|---|---|"]
    path = folder / "steps.tsv"
    if not path.exists():
        return lines[:2] + ["_missing: no steps.tsv (gpu.sh did not get to its first step)_", ""]
    for row in path.read_text(encoding="utf-8").splitlines():
        parts = (row.split("\t") + ["", "", "", ""])[:4]
        lines.append("| " + " | ".join(parts) + " |")
    return lines + [""]


def tests_section(folder: Path) -> list[str]:
    import xml.etree.ElementTree as ET

    lines = ["## pytest -m gpu", ""]
    path = folder / "gpu-tests.xml"
    if not path.exists():
        return lines + ["_missing: no gpu-tests.xml_", ""]
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    lines.append(f"{counts['tests']} tests: {counts['tests'] - counts['failures'] - counts['errors'] - counts['skipped']} passed, "
                 f"{counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped")
    for case in suite.iter("testcase"):
        for bad in ("failure", "error"):
            node = case.find(bad)
            if node is not None:
                msg = (node.get("message") or "").splitlines()[0][:200] if node.get("message") else ""
                lines.append(f"- {bad.upper()} {case.get('classname')}::{case.get('name')}: {msg}")
    return lines + [""]


def trt_section(doc) -> list[str]:
    lines = ["## TensorRT engines of the demo model vs ONNX Runtime (CPU fp32)", ""]
    if not doc:
        return lines + ["_missing: no trt.json (the tensorrt step did not run or failed)_", ""]
    lines += ["| engine | build s | max abs diff | max rel diff | min row cosine | goal | eager = CUDA graph |", "|---|---|---|---|---|---|---|"]
    for prec in ("fp32", "fp16"):
        r = doc.get(prec)
        if not r:
            lines.append(f"| {prec} | — | — | — | — | — | — |")
            continue
        if "error" in r:
            lines.append(f"| {prec} | failed: {r['error'][:120]} | | | | | |")
            continue
        lines.append(f"| {prec} | {r['build_s']:.1f} | {r['max_abs']:.2e} | {r['max_rel']:.2e} | {r['min_row_cosine']:.6f} | "
                     f"{r['goal']} ({'met' if r['ok'] else 'NOT met'}) | {r.get('graph_equal')} |")
    return lines + [""]


def score_section(folder: Path) -> list[str]:
    lines = ["## fprt score --device cuda", ""]
    found = False
    for name in ("score-onnx-cuda", "score-trt-cuda"):
        summary = _load(folder / name / "summary.json")
        if not summary:
            lines.append(f"- {name}: _missing_")
            continue
        found = True
        timings = summary.get("timings", {})
        lines.append(f"- {name}: backend {json.dumps(summary.get('backend'))[:200]}; counts {summary.get('counts')}; "
                     f"timings {json.dumps(timings)[:300]}")
        metrics = _load(folder / name / "metrics.json")
        if metrics:
            lines.append(f"  metrics: {json.dumps(metrics)[:200]}")
    return lines + ([""] if found else ["", "_no end-to-end run finished_", ""])


def build(folder: Path) -> str:
    run = (folder / "run.txt").read_text(encoding="utf-8").strip() if (folder / "run.txt").exists() else "(no run.txt)"
    lines = ["# fprt GPU check (benchmarks/gpu.sh)", "", "```", run, "```", ""]
    lines += steps_section(folder)
    lines += tests_section(folder)
    lines += trt_section(_load(folder / "trt.json"))
    lines += similarity_section(_load(folder / "bench_similarity.json"))
    lines += score_section(folder)
    return "\n".join(lines) + "\n"


def _fprt(*args: str) -> None:
    import subprocess

    cmd = [sys.executable, "-m", "fprt", *args]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def demo(folder: Path) -> int:
    """Demo data, a Siamese CNN trained 2 epochs on the GPU and its float-input ONNX export in ``folder``."""
    data, run = folder / "data", folder / "run"
    _fprt("make-demo-data", str(data), "--task", "subsets", "--n-real", "20", "--n-generated", "20", "--n-test", "20",
          "--overwrite")
    _fprt("train", "siamese", "--data", str(data), "--out", str(run), "--size", "128", "--epochs", "2", "--device", "cuda")
    _fprt("export-onnx", str(run), "--out", str(folder / "demo.onnx"))
    return 0


def score(demo_folder: Path, out: Path) -> int:
    """``fprt score --device cuda`` on the demo data: with the ONNX model (ONNX Runtime CUDA EP), then with the
    fp32 TensorRT engine when the tensorrt step left one in ``out``."""
    data = demo_folder / "data"
    labels = str(data / "test" / "labels.csv")
    _fprt("score", str(data), "--model", str(demo_folder / "demo.onnx"), "--device", "cuda", "--out",
          str(out / "score-onnx-cuda"), "--labels", labels)
    plan = out / "demo-fp32.plan"
    if plan.exists():
        _fprt("score", str(data), "--model", str(plan), "--device", "cuda", "--out", str(out / "score-trt-cuda"),
              "--labels", labels)
    return 0


def trt_parity(onnx_path: Path, folder: Path) -> int:
    """Build fp32 and fp16 engines of ``onnx_path`` (float input) and compare them with ONNX Runtime fp32 on
    the CPU; also a CUDA graph of the fp32 engine against its eager run. Writes folder/trt.json."""
    import time

    import numpy as np
    import torch

    from fprt.export import tensorrt as T
    from fprt.export.metadata import read_onnx
    from fprt.export.ort import make_session
    from fprt.export.parity import row_cosine
    from fprt.io import atomic_write_json

    _, meta = read_onnx(onnx_path)
    size = meta.preprocess.size
    pixels = np.random.default_rng(0).integers(0, 256, (16, size, size), dtype=np.uint8)
    x = meta.preprocess.normalize_uint8(pixels)
    ref_all = make_session(onnx_path).run(None, {"image": x})
    ref = ref_all[0]
    doc = {"onnx": str(onnx_path), "batch": 16}
    for prec, goal in (("fp32", 0.99999), ("fp16", 0.999)):
        try:
            t0 = time.perf_counter()
            plan = folder / f"demo-{prec}.plan"
            T.build_engine(onnx_path, plan, fp16=prec == "fp16", max_batch=64, use_cache=False, rebuild=True, log=print)
            built = time.perf_counter() - t0
            runner, _ = T.load_engine(plan)
            out = runner(torch.from_numpy(x).cuda())
            got = out[runner.outputs[0]].float().cpu().numpy()
            diff = np.abs(got.astype(np.float64) - ref)
            entry = {"build_s": built, "max_abs": float(diff.max()),
                     "max_rel": float(diff.max() / max(np.abs(ref).max(), 1e-30)),
                     "min_row_cosine": float(row_cosine(ref, got).min()), "goal": f"row cosine >= {goal}"}
            entry["ok"] = entry["min_row_cosine"] >= goal
            if prec == "fp32":
                graph = runner.capture(16)
                again = graph.run(torch.from_numpy(x).cuda())[runner.outputs[0]].float().cpu().numpy()
                runner(torch.from_numpy(x[:3]).cuda())  # an eager call of another shape must not disturb the graph
                third = graph.run(torch.from_numpy(x).cuda())[runner.outputs[0]].float().cpu().numpy()
                entry["graph_equal"] = bool(np.array_equal(again, got) and np.array_equal(third, got))
            doc[prec] = entry
        except Exception as exc:  # noqa: BLE001 - reported in GPU.md, the other precision still runs
            doc[prec] = {"error": f"{type(exc).__name__}: {exc}"}
    atomic_write_json(folder / "trt.json", doc)
    print(json.dumps(doc, indent=1))
    ok = all(doc.get(p, {}).get("ok") for p in ("fp32", "fp16"))
    return 0 if ok else 1


def check() -> int:
    """KEY=VALUE lines for gpu.sh: CUDA_HOME, ARCHS, TORCH, GPU, CAPABILITY, ORT_PROVIDERS, TENSORRT, PROBLEM."""
    problems = []
    for mod in IMPORTS:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # noqa: BLE001 - every failed import is reported
            problems.append(f"import {mod}: {type(exc).__name__}: {exc}")
    problems += [f"missing {f}" for f in FILES if not (ROOT / f).exists()]
    sys.path.insert(0, str(ROOT / "cpp_ext"))
    try:
        import build_config

        home = build_config.find_cuda_home()
        print(f"CUDA_HOME={home or ''}")
        print(f"ARCHS={build_config.cuda_arch_list()}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"cpp_ext/build_config.py: {type(exc).__name__}: {exc}")
    try:
        import torch

        gpu = torch.cuda.is_available()
        print(f"TORCH={torch.__version__} (CUDA build {torch.version.cuda or 'none'})")
        print(f"GPU={torch.cuda.get_device_name() if gpu else ''}")
        if gpu:
            major, minor = torch.cuda.get_device_capability()
            print(f"CAPABILITY={major}.{minor}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"torch: {type(exc).__name__}: {exc}")
    try:
        import onnxruntime as ort

        print(f"ORT_PROVIDERS={','.join(ort.get_available_providers())}")
    except Exception:  # noqa: BLE001 - already reported by the import loop
        pass
    print(f"TENSORRT={'yes' if importlib.util.find_spec('tensorrt') else 'no'}")
    for p in problems:
        print(f"PROBLEM={p}")
    return 0


def build_ext() -> int:
    """Load fprt's CUDA extension, building it just in time when the prebuilt one does not fit (needs nvcc)."""
    from fprt.runtime.extension_loader import load

    result = load("cuda")
    print(f"cuda extension: {result.status}: {result.detail}")
    return 0 if result.status == "ok" else 1


def suite_model() -> int:
    """Print the suite's Siamese CNN run folder (made by benchmarks/conftest.py), or nothing."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import conftest

    found = sorted(conftest.suite_cache().glob("siamese-untrained-*"), key=lambda p: p.stat().st_mtime)
    print(found[-1] if found else "")
    return 0


def report(folder: Path) -> int:
    from fprt.io import atomic_write_text

    path = atomic_write_text(folder / "GPU.md", build(folder))
    print(f"wrote {path}")
    return 0


USAGE = ("usage: python benchmarks/gpu_tools.py check | build-ext | suite-model | report RESULTS_DIR | schedule BUDGET"
         " | step-limit STEP ELAPSED BUDGET | trt-parity ONNX DIR | demo DIR | score DEMO_DIR OUT_DIR")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["check"]:
        return check()
    if argv == ["build-ext"]:
        return build_ext()
    if argv == ["suite-model"]:
        return suite_model()
    if len(argv) == 2 and argv[0] == "report" and Path(argv[1]).is_dir():
        return report(Path(argv[1]))
    try:
        if len(argv) == 2 and argv[0] == "schedule":
            for name, what in schedule(float(argv[1])):
                print(f"{name}: {what}")
            return 0
        if len(argv) == 4 and argv[0] == "step-limit":
            ok, limit, why = step_limit(argv[1], float(argv[2]), float(argv[3]))
            print(f"run {limit}" if ok else f"skip {why}")
            return 0
    except ValueError as exc:
        print(f"gpu_tools: {exc}", file=sys.stderr)
        return 2
    if len(argv) == 3 and argv[0] == "trt-parity" and Path(argv[1]).is_file() and Path(argv[2]).is_dir():
        return trt_parity(Path(argv[1]), Path(argv[2]))
    if len(argv) == 2 and argv[0] == "demo":
        Path(argv[1]).mkdir(parents=True, exist_ok=True)
        return demo(Path(argv[1]))
    if len(argv) == 3 and argv[0] == "score" and Path(argv[1]).is_dir() and Path(argv[2]).is_dir():
        return score(Path(argv[1]), Path(argv[2]))
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
