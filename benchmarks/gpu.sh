#!/usr/bin/env bash
# fprt's GPU benchmarks in one command, for a machine with an NVIDIA GPU:
#
#   benchmarks/gpu.sh [--out DIR] [--model RUN_OR_ONNX] [--data DIR] [--batch-sizes 1,8,64,256]
#                     [--python PY] [--skip-build] [--dry-run]
#
# 1. builds the CUDA similarity extension (fprt._similarity_cuda) just in time into fprt's extension cache,
#    with CUDA_HOME found as cpp_ext/build_config.py finds it ($CUDA_HOME, else the toolkit the `nvcc` on
#    PATH belongs to — it may be a wrapper script) and this GPU's architecture added to the targets;
# 2. similarity: fprt's CUDA extension vs a bare cuBLAS bf16 GEMM vs tiled torch matmul + topk
#    (benchmarks/bench_similarity.py, its GPU tests: 25,000 × 10,000 × 256, row top-10);
# 3. models: PyTorch (fp32/fp16/bf16) vs ONNX Runtime's CUDA EP (fp32/fp16) vs TensorRT (fp32/fp16) at
#    batch 1, 8, 64, 256 (benchmarks/bench_latency.py, GPU tests) and `fprt bench --device cuda` on --model
#    (default: the suite's Siamese CNN) — one table;
# 4. writes DIR/*.json (pytest-benchmark JSON, the suites' JSON, fprt bench's bench.json) and DIR/GPU.md
#    (machine, command, every table and ratio) to paste into benchmarks/RESULTS.md.
#
# Needs: fprt installed with its dev extra, onnxruntime-gpu and TensorRT for the ORT-CUDA / TensorRT rows
# (pip install 'fprt[gpu]'; rows whose library is missing are reported as skipped, not failed), nvcc.
# --dry-run checks the arguments, the tools and the imports and prints the plan, without a GPU (what CI runs).
set -euo pipefail

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

ARGS="$*"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT=""
MODEL=""
DATA=""
BATCHES="1,8,64,256"
PY=""
SKIP_BUILD=0
DRY=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --model) MODEL="${2:?--model needs a training run or an .onnx file}"; shift 2 ;;
        --model=*) MODEL="${1#*=}"; shift ;;
        --data) DATA="${2:?--data needs a dataset folder}"; shift 2 ;;
        --data=*) DATA="${1#*=}"; shift ;;
        --batch-sizes) BATCHES="${2:?--batch-sizes needs e.g. 1,8,64,256}"; shift 2 ;;
        --batch-sizes=*) BATCHES="${1#*=}"; shift ;;
        --python) PY="${2:?--python needs an interpreter}"; shift 2 ;;
        --python=*) PY="${1#*=}"; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if [[ ! "$BATCHES" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
    echo "gpu.sh: error: --batch-sizes '$BATCHES': expected positive whole numbers separated by commas, e.g. 1,8,64,256" >&2
    exit 2
fi
if [[ -n "$MODEL" && ! -e "$MODEL" ]]; then
    echo "gpu.sh: error: --model '$MODEL': no such training run or ONNX file" >&2
    exit 2
fi
if [[ -n "$DATA" && ! -d "$DATA" ]]; then
    echo "gpu.sh: error: --data '$DATA': no such dataset folder" >&2
    exit 2
fi
if [[ -z "$PY" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3 || true)"; fi
fi
if [[ -z "$PY" ]] || ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "gpu.sh: error: no Python ≥ 3.10 found (pass --python PY; fprt's venv is $ROOT/.venv)" >&2
    exit 2
fi
OUT="${OUT:-$ROOT/benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)}"

step() { printf '\n==> %s\n' "$*"; }

# ------------------------------------------------------------------------------------------- checks
step "checking tools and imports ($PY)"
CHECK_OUT="$("$PY" "$HERE/gpu_tools.py" check)" || { echo "gpu.sh: error: the import check itself failed" >&2; echo "$CHECK_OUT" >&2; exit 2; }

value() { printf '%s\n' "$CHECK_OUT" | sed -n "s/^$1=//p" | head -n 1; }
CUDA_HOME_FOUND="$(value CUDA_HOME)"
GPU_NAME="$(value GPU)"
CAPABILITY="$(value CAPABILITY)"
ARCHS="$(value ARCHS)"
printf '%s\n' "$CHECK_OUT" | grep -v '^PROBLEM=' | sed 's/^/    /'
PROBLEMS="$(printf '%s\n' "$CHECK_OUT" | sed -n 's/^PROBLEM=//p')"
if [[ -n "$PROBLEMS" ]]; then
    printf 'gpu.sh: error: %s\n' "$PROBLEMS" >&2
    exit 2
fi
if [[ -z "$CUDA_HOME_FOUND" ]]; then
    echo "    nvcc: not found (set CUDA_HOME or put nvcc on PATH): the CUDA extension cannot be built"
fi
if [[ -n "$CAPABILITY" && ";$ARCHS;" != *";$CAPABILITY;"* && ";$ARCHS;" != *";$CAPABILITY+PTX;"* ]]; then
    ARCHS="$ARCHS;$CAPABILITY"  # this GPU's own SASS, besides the defaults
fi

PLAN=(
    "build:      CUDA_HOME=${CUDA_HOME_FOUND:-<none>} TORCH_CUDA_ARCH_LIST='$ARCHS' $PY benchmarks/gpu_tools.py build-ext"
    "similarity: $PY -m pytest benchmarks/bench_similarity.py --benchmark-only -k 'cublas or cuda or summary' --benchmark-json=$OUT/similarity-gpu.pytest.json"
    "latency:    $PY -m pytest benchmarks/bench_latency.py --benchmark-only -k gpu --benchmark-json=$OUT/latency-gpu.pytest.json"
    "fprt bench: fprt bench ${MODEL:-<the suite model>} --device cuda --batch-sizes $BATCHES ${DATA:+--data $DATA }--out $OUT/fprt-bench-cuda"
    "report:     $PY benchmarks/gpu_tools.py report $OUT  →  $OUT/GPU.md"
)
step "plan (results go to $OUT)"
printf '    %s\n' "${PLAN[@]}"

if [[ "$DRY" == 1 ]]; then
    if [[ -z "$GPU_NAME" ]]; then
        echo "    GPU: none visible to torch — a real run would stop here"
    fi
    echo
    echo "dry run: arguments, tools and imports are fine; nothing was built or run"
    exit 0
fi

if [[ -z "$GPU_NAME" ]]; then
    echo "gpu.sh: error: no CUDA GPU visible to torch (torch.cuda.is_available() is False); use --dry-run to check the setup" >&2
    exit 1
fi
if [[ -z "$CUDA_HOME_FOUND" && "$SKIP_BUILD" == 0 ]]; then
    echo "gpu.sh: error: no CUDA toolkit (nvcc) found to build the extension: set CUDA_HOME, or pass --skip-build to use the fallback" >&2
    exit 1
fi

mkdir -p "$OUT"
cd "$ROOT"
export FPRT_BENCH_RESULTS="$OUT"  # the suites' own JSON (benchmarks/conftest.py) go beside the rest
export FPRT_NO_PROGRESS=1
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command: benchmarks/gpu.sh $ARGS"
    echo "gpu: $GPU_NAME (sm_${CAPABILITY/./}), CUDA_HOME=$CUDA_HOME_FOUND, archs $ARCHS"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true
} > "$OUT/run.txt"

if [[ "$SKIP_BUILD" == 0 ]]; then
    step "building the CUDA extension (a few minutes the first time; cached afterwards)"
    CUDA_HOME="$CUDA_HOME_FOUND" TORCH_CUDA_ARCH_LIST="$ARCHS" "$PY" "$HERE/gpu_tools.py" build-ext | tee -a "$OUT/run.txt"
fi

STATUS=0
step "similarity: extension vs cuBLAS GEMM vs torch matmul + topk"
"$PY" -m pytest benchmarks/bench_similarity.py --benchmark-only -k "cublas or cuda or summary" -s -q -p no:cacheprovider \
    --benchmark-json="$OUT/similarity-gpu.pytest.json" 2>&1 | tee "$OUT/similarity-gpu.log" || STATUS=1

step "models: PyTorch vs ONNX Runtime CUDA EP vs TensorRT"
"$PY" -m pytest benchmarks/bench_latency.py --benchmark-only -k gpu -s -q -p no:cacheprovider \
    --benchmark-json="$OUT/latency-gpu.pytest.json" 2>&1 | tee "$OUT/latency-gpu.log" || STATUS=1

step "fprt bench --device cuda"
if [[ -z "$MODEL" ]]; then
    # the suite's Siamese CNN (made by benchmarks/conftest.py during the latency run)
    MODEL="$("$PY" "$HERE/gpu_tools.py" suite-model)"
fi
if [[ -n "$MODEL" ]]; then
    "$PY" -m fprt bench "$MODEL" --device cuda --batch-sizes "$BATCHES" ${DATA:+--data "$DATA"} --out "$OUT/fprt-bench-cuda" \
        2>&1 | tee "$OUT/fprt-bench-cuda.log" || STATUS=1
else
    echo "no model to run fprt bench on (pass --model)"; STATUS=1
fi

step "report"
"$PY" "$HERE/gpu_tools.py" report "$OUT"
echo
echo "results: $OUT (GPU.md: paste it into benchmarks/RESULTS.md)"
exit $STATUS
