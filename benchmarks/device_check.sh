#!/usr/bin/env bash
# GPU readiness check: writes ONE results file with
#   1. the CUDA tests (pytest -k cuda: the tests that need, or check the absence of, a GPU),
#   2. the spectral layer's achieved bandwidth against the device's copy bandwidth
#      (benchmarks/bench_spectral_conv.py --quick: 2-D 64², dense/Tucker/CP),
#   3. a training step, inference and peak memory against neuraloperator when it is installed
#      (benchmarks/bench_fno_step.py),
#   4. bfloat16 autocast: step time against float32, the forward's deviation, finite gradients,
#   5. on CUDA, a short `python train.py` run on the GPU: fp16 with its GradScaler, gradient
#      clipping, the fused optimizer, a checkpoint and the per-resolution evaluation.
# It starts with the environment: torch, the GPU, and which of neuralops' dependencies import.
#
# Usage: benchmarks/device_check.sh [--device cuda|cpu] [--quick] [--out FILE] [--help]
#   --device  default: cuda when torch sees a GPU, else cpu: the CPU-safe parts, always at the
#             --quick sizes (CPU figures at full size: python benchmarks/bench_fno_step.py)
#   --quick   tiny sizes (a smoke test of the script; tests/test_benchmarks.py runs it on CPU)
#   --out     default: benchmarks/results/device_check_<device>.md
# Runs in about 3 minutes on one H100-class GPU (each part has a time limit, see LIMIT_*).
# Environment: PYTHON (default: python, else python3) is the interpreter with neuralops' dependencies.
# On a lent GPU machine whose image lacks some of them, carry the wheels that
# benchmarks/device_wheels.sh gathers (see there) and write the results into the folder that
# comes back:  bash benchmarks/device_check.sh --device cuda --out "$OUT/device_check_cuda.md"
set -u -o pipefail

RESULTS=""
DEVICE=""
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --out) RESULTS=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "device_check.sh: unknown argument '$1' (expected --device cuda|cpu, --quick, --out FILE, --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$RESULTS" ]; then  # relative to where it was called from, before the cd below
    mkdir -p "$(dirname "$RESULTS")" && RESULTS="$(cd "$(dirname "$RESULTS")" && pwd)/$(basename "$RESULTS")" || exit 2
fi
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python
    command -v python > /dev/null || PYTHON=python3
fi
export PYTHONUNBUFFERED=1  # a part stopped at its time limit keeps the lines it printed
if [ -z "$DEVICE" ]; then
    DEVICE=$("$PYTHON" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')") || {
        echo "device_check.sh: '$PYTHON' cannot import torch; set PYTHON to the interpreter that has it" >&2; exit 2; }
fi
case "$DEVICE" in
    cuda|cpu) ;;
    *) echo "device_check.sh: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac
RESULTS=${RESULTS:-$PWD/benchmarks/results/device_check_${DEVICE}.md}
mkdir -p "$(dirname "$RESULTS")"

# Time limits per part (seconds); expected together about 3 minutes on one H200.
LIMIT_ENVIRONMENT=30; LIMIT_TESTS=60; LIMIT_SPECTRAL=70; LIMIT_STEP=90; LIMIT_AUTOCAST=45; LIMIT_TRAIN=60
if [ "$QUICK" = 1 ] || [ "$DEVICE" = cpu ]; then  # full CPU sizes would not fit the limits
    STEP_ARGS="--quick"
else  # one process: the per-section processes exist for glibc's malloc on the CPU
    STEP_ARGS="--repeats 10 --grids 64 128 --infer-grids 64 256 --no-isolate"
fi
FAILED=0

part() {  # part TITLE LIMIT COMMAND...: run a part under a time limit, its output in a code block
    local title=$1 limit=$2; shift 2
    echo "## $title"; echo; echo "\`$*\`"; echo; echo '```'
    timeout -k 10 "$limit" "$@" 2>&1 | grep -v -e '^USDT:' -e 'gpuGetDeviceCount' -e 'profiler_st'
    local status=${PIPESTATUS[0]}
    echo '```'
    if [ "$status" -ne 0 ]; then
        echo; echo "**exit status $status** (124: stopped at the ${limit} s limit)"
        FAILED=1
    fi
    echo
}

{
    echo "# Device check ($DEVICE)"
    echo
    date -u +%Y-%m-%dT%H:%MZ
    echo
    part "Environment" "$LIMIT_ENVIRONMENT" "$PYTHON" benchmarks/environment.py
    part "CUDA tests" "$LIMIT_TESTS" "$PYTHON" -m pytest -q -rs -k cuda -p no:cacheprovider --continue-on-collection-errors tests
    if [ "$DEVICE" = cuda ]; then
        part "Spectral layer: time, memory, bandwidth against the copy bandwidth" "$LIMIT_SPECTRAL" \
            "$PYTHON" benchmarks/bench_spectral_conv.py --device cuda --quick
    else
        part "Spectral layer (CPU; bandwidth is measured on CUDA only)" "$LIMIT_SPECTRAL" \
            "$PYTHON" benchmarks/bench_spectral_conv.py --device cpu --smoke
    fi
    # shellcheck disable=SC2086
    part "Training step, inference and peak memory against neuraloperator" "$LIMIT_STEP" \
        "$PYTHON" benchmarks/bench_fno_step.py --device "$DEVICE" --sections step inference memory $STEP_ARGS
    # shellcheck disable=SC2086
    part "bfloat16 autocast" "$LIMIT_AUTOCAST" \
        "$PYTHON" benchmarks/bench_fno_step.py --device "$DEVICE" --sections autocast $STEP_ARGS
    if [ "$DEVICE" = cuda ]; then
        RUN_DIR=$(mktemp -d)
        part "Training run on the GPU (fp16, gradient clipping, 2 epochs of 3 batches)" "$LIMIT_TRAIN" \
            "$PYTHON" train.py trainer.device=cuda trainer.precision=fp16 trainer.grad_clip=1.0 trainer.epochs=2 \
            trainer.limit_train_batches=3 trainer.progress=false trainer.tensorboard=false "hydra.run.dir=$RUN_DIR"
        rm -rf "$RUN_DIR"
    fi
} > "$RESULTS" || { echo "device_check.sh: could not write $RESULTS" >&2; exit 2; }
echo "wrote $RESULTS"
exit $FAILED
