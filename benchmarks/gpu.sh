#!/usr/bin/env bash
# fprt's one GPU check, for a machine with an NVIDIA GPU, in at most --budget seconds (default 480 = 8 min):
#
#   benchmarks/gpu.sh [--out DIR] [--budget SECONDS] [--python PY] [--skip-build] [--dry-run]
#
# Steps, in order of value (benchmarks/gpu_tools.py STEPS has their estimates on one H100/H200):
#   build       the CUDA similarity extension: the prebuilt one if it fits this GPU, else built just in time
#               (CUDA_HOME as cpp_ext/build_config.py finds it; this GPU's architecture added to the targets);
#   gpu-tests   pytest -m gpu (CUDA similarity vs the CPU extension, TensorRT, ONNX Runtime CUDA EP);
#   demo        demo data, a Siamese CNN trained 2 epochs on the GPU, its ONNX export;
#   tensorrt    fprt build-engine of the demo model, fp32 and fp16, parity against ONNX Runtime (+ CUDA graph);
#   similarity  bench_similarity.py on the GPU: row, column, stats, groups, streamed vs cuBLAS GEMM and
#               torch matmul + topk;
#   score       fprt score --device cuda end to end (ONNX Runtime CUDA EP, then the TensorRT engine).
# Before each step the remaining budget is checked (gpu_tools.py step-limit): a step runs under `timeout`
# (at most twice its estimate, never past the budget minus the report's reserve) or is skipped, so the run
# always ends with DIR/GPU.md (steps, test results, parity, ratios, end-to-end timings) in time.
# --dry-run checks arguments, tools and imports and prints the plan and the budget schedule, without a GPU
# (what CI runs).
set -euo pipefail

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
}

ARGS="$*"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT=""
BUDGET=480
PY=""
SKIP_BUILD=0
DRY=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --budget) BUDGET="${2:?--budget needs seconds}"; shift 2 ;;
        --budget=*) BUDGET="${1#*=}"; shift ;;
        --python) PY="${2:?--python needs an interpreter}"; shift 2 ;;
        --python=*) PY="${1#*=}"; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if [[ ! "$BUDGET" =~ ^[1-9][0-9]*$ ]]; then
    echo "gpu.sh: error: --budget '$BUDGET': expected a positive whole number of seconds, e.g. 480" >&2
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
TOOLS=("$PY" "$HERE/gpu_tools.py")

step() { printf '\n==> %s\n' "$*"; }

# ------------------------------------------------------------------------------------------- checks
step "checking tools and imports ($PY)"
CHECK_OUT="$("${TOOLS[@]}" check)" || { echo "gpu.sh: error: the import check itself failed" >&2; echo "$CHECK_OUT" >&2; exit 2; }

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
    echo "    nvcc: not found (set CUDA_HOME or put nvcc on PATH): the CUDA extension cannot be rebuilt here"
fi
if [[ -n "$CAPABILITY" && ";$ARCHS;" != *";$CAPABILITY;"* && ";$ARCHS;" != *";$CAPABILITY+PTX;"* ]]; then
    ARCHS="$ARCHS;$CAPABILITY"  # this GPU's own SASS, besides the defaults
fi

DEMO="$OUT/demo"
PLAN=(
    "build:      CUDA_HOME=${CUDA_HOME_FOUND:-<none>} TORCH_CUDA_ARCH_LIST='$ARCHS' $PY benchmarks/gpu_tools.py build-ext"
    "gpu-tests:  $PY -m pytest -m gpu tests --junitxml=$OUT/gpu-tests.xml"
    "demo:       $PY benchmarks/gpu_tools.py demo $DEMO  (fprt make-demo-data; train siamese --device cuda --epochs 2; export-onnx)"
    "tensorrt:   $PY benchmarks/gpu_tools.py trt-parity $DEMO/demo.onnx $OUT  (fp32 + fp16 engines vs ONNX Runtime)"
    "similarity: $PY -m pytest benchmarks/bench_similarity.py --benchmark-only -k 'cuda or cublas or summary'"
    "score:      $PY benchmarks/gpu_tools.py score $DEMO $OUT  (fprt score --device cuda: demo.onnx, then demo-fp32.plan)"
    "report:     $PY benchmarks/gpu_tools.py report $OUT  →  $OUT/GPU.md"
)
step "plan (results go to $OUT; budget $BUDGET s)"
printf '    %s\n' "${PLAN[@]}"
step "budget schedule if every step takes its estimate"
"${TOOLS[@]}" schedule "$BUDGET" | sed 's/^/    /'

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

mkdir -p "$OUT" "$DEMO"
cd "$ROOT"
export FPRT_BENCH_RESULTS="$OUT"  # the suites' own JSON (benchmarks/conftest.py) go beside the rest
export FPRT_NO_PROGRESS=1
export FPRT_BENCH_ROUNDS="${FPRT_BENCH_ROUNDS:-3}"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command: benchmarks/gpu.sh $ARGS"
    echo "gpu: $GPU_NAME (sm_${CAPABILITY/./}), CUDA_HOME=$CUDA_HOME_FOUND, archs $ARCHS"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true
    printf '%s\n' "$CHECK_OUT" | grep -E '^(TORCH|ORT_PROVIDERS|TENSORRT)=' || true
    echo "budget: $BUDGET s"
} > "$OUT/run.txt"
: > "$OUT/steps.tsv"

START=$SECONDS
STATUS=0
declare -A DONE=()

# run_step NAME NEEDS COMMAND...: runs COMMAND under the step's time limit (or records why it was skipped);
# NEEDS names an earlier step that must have succeeded ("-" for none).
run_step() {
    local name="$1" needs="$2"
    shift 2
    local elapsed=$((SECONDS - START)) decision limit rc t0
    if [[ "$needs" != "-" && "${DONE[$needs]:-}" != ok ]]; then
        printf '%s\tskipped\t0\tneeds %s, which did not succeed\n' "$name" "$needs" >> "$OUT/steps.tsv"
        step "$name: skipped (needs $needs)"
        return 0
    fi
    decision="$("${TOOLS[@]}" step-limit "$name" "$elapsed" "$BUDGET")"
    if [[ "$decision" == skip* ]]; then
        printf '%s\tskipped\t0\t%s\n' "$name" "${decision#skip }" >> "$OUT/steps.tsv"
        step "$name: skipped (${decision#skip })"
        return 0
    fi
    limit="${decision#run }"
    step "$name (limit ${limit} s, ${elapsed} s of $BUDGET s used)"
    t0=$SECONDS
    set +e
    timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc == 0 ]]; then
        DONE[$name]=ok
        printf '%s\tok\t%s\t\n' "$name" $((SECONDS - t0)) >> "$OUT/steps.tsv"
    elif [[ $rc == 124 || $rc == 137 ]]; then
        STATUS=1
        printf '%s\ttimed out\t%s\tstopped at its %s s limit\n' "$name" $((SECONDS - t0)) "$limit" >> "$OUT/steps.tsv"
    else
        STATUS=1
        printf '%s\tfailed\t%s\texit status %s (see %s.log)\n' "$name" $((SECONDS - t0)) "$rc" "$name" >> "$OUT/steps.tsv"
    fi
}

if [[ "$SKIP_BUILD" == 0 ]]; then
    run_step build - env CUDA_HOME="$CUDA_HOME_FOUND" TORCH_CUDA_ARCH_LIST="$ARCHS" "${TOOLS[@]}" build-ext
else
    printf 'build\tskipped\t0\t--skip-build\n' >> "$OUT/steps.tsv"
    DONE[build]=ok
fi
run_step gpu-tests - "$PY" -m pytest -m gpu tests -q -p no:cacheprovider -p no:randomly --junitxml="$OUT/gpu-tests.xml"
run_step demo - "${TOOLS[@]}" demo "$DEMO"
run_step tensorrt demo "${TOOLS[@]}" trt-parity "$DEMO/demo.onnx" "$OUT"
run_step similarity build "$PY" -m pytest benchmarks/bench_similarity.py --benchmark-only -k "cuda or cublas or summary" -s -q \
    -p no:cacheprovider --benchmark-json="$OUT/similarity-gpu.pytest.json"
run_step score demo "${TOOLS[@]}" score "$DEMO" "$OUT"

step "report ($((SECONDS - START)) s of $BUDGET s used)"
"${TOOLS[@]}" report "$OUT"
echo
echo "results: $OUT (GPU.md: paste it into benchmarks/RESULTS.md)"
exit $STATUS
