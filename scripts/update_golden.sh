#!/usr/bin/env bash
# Regenerates golden files after an intended change; review `git diff tests/golden` before
# committing. One section per area.
#   scripts/update_golden.sh [all|config|launch|train]      (default: all)
# Uses the build in $BUILD_DIR (default build-cpu; `cmake --preset cpu` creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-cpu}
what=${1:-all}
[[ -d $build ]] || { echo "update_golden.sh: no build in '$build' (run: cmake --preset cpu)" >&2; exit 2; }

# --- config: bignlp's messages and outputs (tests/golden/config/<case>/expected_*) ---
if [[ $what == all || $what == config ]]; then
  cmake --build "$build" --target test_config bignlp -j2
  BIGNLP_UPDATE_GOLDEN=1 "$build/tests/test_config" --gtest_filter='Cases/ConfigGolden.*'
  echo "update_golden.sh: tests/golden/config regenerated"
fi

# --- launch: rendered job scripts and saved stage configs (tests/golden/launch/<case>/expected) ---
if [[ $what == all || $what == launch ]]; then
  cmake --build "$build" --target test_launch -j2
  BIGNLP_UPDATE_GOLDEN=1 "$build/tests/test_launch" --gtest_filter='Golden.RenderedJobsMatchTheGoldenFiles'
  echo "update_golden.sh: tests/golden/launch regenerated"
fi

# --- train: the CPU metrics of a fixed bignlp-train run (tests/golden/train/tiny_cpu_metrics.csv) --
# Only after an intended change of CPU numerics: the test pins that GPU support changed nothing.
if [[ $what == all || $what == train ]]; then
  cmake --build "$build" --target test_cli_train -j2
  BIGNLP_UPDATE_GOLDEN=1 "$build/tests/test_cli_train" --gtest_filter='TrainMainTest.CpuLossesMatchTheRecordedRun'
  echo "update_golden.sh: tests/golden/train regenerated"
fi
