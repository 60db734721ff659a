"""The Python half of ``benchmarks/gpu.sh`` (the shell script stays argument handling and commands).

    python benchmarks/gpu_tools.py check          # tools, imports, CUDA_HOME, GPU: KEY=VALUE lines (PROBLEM=... on failure)
    python benchmarks/gpu_tools.py build-ext      # build / load fprt's CUDA similarity extension just in time
    python benchmarks/gpu_tools.py suite-model    # the suite's Siamese CNN run folder (benchmarks/conftest.py)
    python benchmarks/gpu_tools.py report DIR     # DIR/GPU.md from what gpu.sh left in DIR

``report`` reads ``run.txt`` (date, command, GPU), ``bench_similarity.json`` and ``bench_latency.json``
(written by benchmarks/conftest.py) and ``fprt-bench-cuda/bench.md`` (``fprt bench``'s table); a missing
piece is listed as missing, never invented.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ("fprt", "fprt.cli", "fprt.formats", "fprt.runtime.bench", "fprt.export.bench", "fprt.runtime.extension_loader",
           "torch", "onnxruntime", "pytest", "pytest_benchmark", "rich")
FILES = ("benchmarks/bench_similarity.py", "benchmarks/bench_latency.py", "benchmarks/conftest.py", "cpp_ext/build_config.py")

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


def build(folder: Path) -> str:
    run = (folder / "run.txt").read_text(encoding="utf-8").strip() if (folder / "run.txt").exists() else "(no run.txt)"
    lines = ["# fprt GPU benchmarks", "", "```", run, "```", ""]
    lines += similarity_section(_load(folder / "bench_similarity.json"))
    lines += latency_section(_load(folder / "bench_latency.json"))
    bench_md = folder / "fprt-bench-cuda" / "bench.md"
    lines += ["## fprt bench --device cuda", ""]
    lines += [bench_md.read_text(encoding="utf-8")] if bench_md.exists() else ["_missing: no fprt-bench-cuda/bench.md_", ""]
    return "\n".join(lines) + "\n"


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


USAGE = "usage: python benchmarks/gpu_tools.py check | build-ext | suite-model | report RESULTS_DIR"


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
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
