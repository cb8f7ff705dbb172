#!/usr/bin/env bash
# Configures and builds bignlp into build/ (preset 'default': CUDA kernels too when nvcc is found).
#   scripts/build.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset default "$@" >/dev/null
cmake --build --preset default
