#!/usr/bin/env bash
# Installs bignlp's build dependencies from Debian's packages. Idempotent: packages already present
# are skipped, and apt is not touched at all when nothing is missing.
#
#   scripts/bootstrap.sh          build dependencies (enough to build and run bignlp)
#   scripts/bootstrap.sh --test   also the test peers: OmegaConf, PyTorch (CPU), SentencePiece,
#                                 numpy, a local Slurm cluster, clang's libFuzzer runtime, Node.js
set -euo pipefail

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg' (expected --test)" >&2; exit 2 ;;
  esac
done

build_pkgs=(
  build-essential cmake ninja-build pkg-config ccache git curl ca-certificates python3
  libyaml-dev libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev libsentencepiece-dev libzstd-dev libhwloc-dev libcurl4-openssl-dev libssl-dev libgloo-dev
  libicu-dev zlib1g-dev libcpp-httplib-dev
)
test_pkgs=(
  python3 python3-yaml python3-omegaconf python3-numpy python3-sentencepiece python3-torch
  slurm-wlm munge clang libclang-rt-14-dev curl python3-regex unzip
)

pkgs=("${build_pkgs[@]}")
[[ $want_test == 1 ]] && pkgs+=("${test_pkgs[@]}")
# Node.js and npm (npm peers of the tokenizer tests): a Node.js that bundles npm (NodeSource's)
# conflicts with Debian's npm package, so Debian's are installed only when no npm is on PATH.
if [[ $want_test == 1 ]] && ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "bootstrap: all ${#pkgs[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "bootstrap: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
