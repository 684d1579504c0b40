#!/usr/bin/env bash
# Wheels for a lent GPU machine whose image lacks some of neuralops' dependencies (it reaches no
# package index). Gathers, for that image's Python (default 3.12) on x86-64 Linux, the packages
# benchmarks/environment.py found missing there: tensorly, hydra-core, omegaconf (and hydra's
# antlr4 runtime, built here as a pure-Python wheel), torch-harmonics and neuraloperator (only
# compared against; its import may still need a package the image lacks, and its comparisons then
# read n/a), without dependencies the image already has. torch-harmonics' compiled
# helpers are built for one torch version; where they do not load, only the spherical models fail
# (neuralops imports torch-harmonics when a spherical transform is first built).
#
# Usage: benchmarks/device_wheels.sh [--python-version 3.12] [--dir .device_wheels] [--help]
#   --dir     default: .device_wheels in the repository root (git-ignored; about 9 MB)
# Then, with the device tool: carry .device_wheels and run
#   python3 -m pip install --no-index --no-deps .device_wheels/*.whl &&
#   bash benchmarks/device_check.sh --device cuda --out "$OUT/device_check_cuda.md"
set -euo pipefail

PYTHON_VERSION=3.12
DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --python-version) PYTHON_VERSION=$2; shift 2 ;;
        --dir) DIR=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "device_wheels.sh: unknown argument '$1' (expected --python-version X.Y, --dir DIR, --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$DIR" ]; then  # relative to where it was called from
    mkdir -p "$DIR" && DIR=$(cd "$DIR" && pwd)
fi
cd "$(dirname "$0")/.."
DIR=${DIR:-$PWD/.device_wheels}
mkdir -p "$DIR"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform any)
python -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" "${PLATFORMS[@]}" \
    --dest "$DIR" "tensorly>=0.8" "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" "torch-harmonics>=0.8.1" \
    "neuraloperator>=2.0" tensorly-torch configmypy zencfg "ruamel.yaml"
python -m pip wheel --quiet --no-deps --wheel-dir "$DIR" "antlr4-python3-runtime==4.9.*"  # hydra-core 1.3 needs 4.9; sdist only
ls -1 "$DIR"
du -sh "$DIR"
