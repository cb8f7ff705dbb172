#!/usr/bin/env bash
# Runs one libFuzzer target for a given time.
#   scripts/fuzz.sh <target> <seconds> [libFuzzer flags...]
# Targets: fuzz_override_parser, fuzz_interpolation, fuzz_yaml_roundtrip.
# Builds with the `fuzz` preset (clang, libFuzzer + ASan/UBSan) into build-fuzz/. Starts from the
# checked-in corpus tests/data/fuzz/<target>/ (read only); new inputs go to build-fuzz/corpus/<target>/,
# crashes to build-fuzz/crashes/<target>/. Turn a crash into a regression case by copying it to
# tests/data/fuzz/<target>/ (test_config replays every file there) and fixing the bug.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 2 ]]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
case $target in
  fuzz_override_parser|fuzz_interpolation|fuzz_yaml_roundtrip) ;;
  *) echo "fuzz.sh: unknown target '$target'" >&2; exit 2 ;;
esac
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (scripts/bootstrap.sh --test installs clang)" >&2; exit 2; }
cmake --preset fuzz >/dev/null
cmake --build build-fuzz --target "$target" -j2
mkdir -p "build-fuzz/corpus/$target" "build-fuzz/crashes/$target"
seeds="tests/data/fuzz/$target"
exec "build-fuzz/bin/$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
  -artifact_prefix="build-fuzz/crashes/$target/" "$@" "build-fuzz/corpus/$target" "$seeds"
