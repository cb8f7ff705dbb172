#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test that needs no GPU.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -L parallel
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
scripts/build.sh
ctest --preset default "$@"
