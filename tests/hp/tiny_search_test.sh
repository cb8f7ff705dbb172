#!/usr/bin/env bash
# End to end: `bignlp stages=[search_config] search_config=gpt3/tiny-search cluster_type=local`
# runs a real search on the CPU (candidates trained for 10 steps by bignlp-train through the
# launcher) and writes the ranked CSV and the optimal config. The data is made here: a byte-level
# GPT-2 vocabulary (256 symbols and <|endoftext|>, no merges) and a corpus tokenized by
# bignlp-preprocess, so the test needs no download.
#   tiny_search_test.sh <bin dir> <source dir>
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/bpe" "$work/data/demo"
python3 - "$work/data/bpe" <<'PY'
import json, sys
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs = bs[:]
n = 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
vocab = {chr(c): i for i, c in enumerate(cs)}
vocab["<|endoftext|>"] = 256
json.dump(vocab, open(sys.argv[1] + "/vocab.json", "w"))
open(sys.argv[1] + "/merges.txt", "w").write("#version: 0.2\n")
PY
python3 - "$work/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(7)
words = "the model trains on text and the search ranks each layout by its step time".split()
with open(sys.argv[1], "w") as f:
    for _ in range(400):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(120))}) + "\n")
PY
"$bin/bignlp-preprocess" --input "$work/corpus.jsonl" --tokenizer-type GPT2BPETokenizer \
  --vocab-file "$work/data/bpe/vocab.json" --merge-file "$work/data/bpe/merges.txt" --append-eod \
  --output-prefix "$work/data/demo/my-gpt3_demo" --workers 1 > "$work/preprocess.log" 2>&1

# Two candidates (TP 1 and 2), each 10 steps on 2 CPU ranks.
"$bin/bignlp" "stages=[search_config]" search_config=gpt3/tiny-search cluster_type=local \
  "bignlp_path=$src" "bin_dir=$bin" "data_dir=$work/data" "base_results_dir=$work/results" \
  "search_config.train_settings.micro_batch_sizes=[4]" "search_config.train_settings.act_ckpt_layers=[0]" \
  > "$work/search.log" 2>&1 || { tail -50 "$work/search.log"; exit 1; }

out=$work/results/gpt3/tiny-search
fail() { echo "FAIL: $*"; tail -40 "$work/search.log"; exit 1; }
csv=$out/final_result/final_summary_1nodes.csv
[[ -f $csv ]] || fail "no $csv"
head -1 "$csv" | grep -q '^Model Name,Model Size,Seq Length,TP,PP,MBS,Act Ckpt Layers,Act Ckpt Micro Bathes,' \
  || fail "header: $(head -1 "$csv")"
rows=$(($(wc -l < "$csv") - 1))
[[ $rows == 2 ]] || fail "expected 2 measured runs, got $rows: $(cat "$csv")"
# Ranked by time per step (column 16), fastest first, and every time positive.
awk -F, 'NR > 1 { if ($16 <= 0) bad = 1; if (NR > 2 && $16 < prev) bad = 1; prev = $16 } END { exit bad }' "$csv" \
  || fail "not ranked: $(cat "$csv")"
[[ -f $out/final_result/failed_jobs_1nodes.csv ]] || fail "no failed_jobs CSV"
best=$out/final_result/optimal_config_0.0034b_1nodes.yaml
[[ -f $best ]] || fail "no optimal config"
tp_best=$(awk -F, 'NR == 2 { print $4 }' "$csv")
grep -q "tensor_model_parallel_size: $tp_best\$" "$best" || fail "optimal config does not have TP $tp_best"
grep -q "the fastest configuration is" "$work/search.log" || fail "no verdict printed"
for d in "$out"/training_logs/gpt3_0.0034b_1nodes_tp_*; do
  grep -q "global_step: 10 " "$d"/log-*.out || fail "$d did not run 10 steps"
done
echo "tiny search OK: $(tail -n +2 "$csv" | cut -d, -f4,16 | tr '\n' ' ')"
