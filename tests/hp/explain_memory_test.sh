#!/usr/bin/env bash
# bignlp --explain-memory and the fine-tuning pre-flight check. Usage: explain_memory_test.sh BIN_DIR
set -uo pipefail
B=$(cd "$1" && pwd)/bignlp
work=$(mktemp -d /tmp/bignlp-explain.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
common=("base_results_dir=$work/results")

# 1. A training config: the breakdown; with gpu_memory_gb too small, "does NOT fit" and fixes.
out=$("$B" --explain-memory 'stages=[training,conversion]' training=gpt3/5b gpu_memory_gb=16 "${common[@]}" 2>&1)
rc=$?
[ $rc = 0 ] || fail "exit $rc: $out"
for want in "training: estimated memory per GPU" "optimizer state" "activations" "total" \
            "gpu_memory_gb=16: does NOT fit" "fits with training." "conversion: trains nothing"; do
  grep -qF "$want" <<<"$out" || fail "missing '$want' in: $out"
done
[ ! -e "$work/results" ] && pass "--explain-memory writes nothing" || fail "results written"

# 2. Fine-tuning: the shape comes from the .nemo's model_config.yaml: a .nemo holding the t5/tiny
#    model section gives the parameter count that training=t5/tiny gives.
"$B" --cfg job --resolve -p training.model training=t5/tiny | grep -v '^# @package' >"$work/model_config.yaml"
tar -cf "$work/t5.nemo" -C "$work" model_config.yaml
params() { sed -n 's/.*(pipeline stage [0-9]*, \([0-9]*\) parameters).*/\1/p' <<<"$1"; }
t=$("$B" --explain-memory 'stages=[training]' training=t5/tiny "${common[@]}" 2>&1)
f=$("$B" --explain-memory 'stages=[fine_tuning]' fine_tuning=t5/squad "fine_tuning.model.restore_from_path=$work/t5.nemo" \
     "${common[@]}" 2>&1)
[ -n "$(params "$t")" ] && [ "$(params "$t")" = "$(params "$f")" ] &&
  pass "fine-tuning estimate reads the .nemo's shape ($(params "$f") parameters)" || fail "training: $t fine_tuning: $f"
out=$("$B" --explain-memory 'stages=[fine_tuning]' fine_tuning=t5/squad "${common[@]}" 2>&1)
grep -q "does not exist yet" <<<"$out" && pass "a missing .nemo is named" || fail "$out"
out=$("$B" --explain-memory 'stages=[prompt_learning]' prompt_learning=gpt3/squad "${common[@]}" 2>&1)
grep -q "prompt_learning: not estimated: prompt learning trains a prompt encoder" <<<"$out" &&
  pass "prompt learning says why it is not estimated" || fail "$out"

# 3. The pre-flight check refuses a fine-tuning stage that does not fit, with the nearest fixes.
out=$("$B" 'stages=[fine_tuning]' fine_tuning=t5/squad "fine_tuning.model.restore_from_path=$work/t5.nemo" \
      fine_tuning.model.data.train_ds.micro_batch_size=512 fine_tuning.model.data.train_ds.global_batch_size=4096 \
      gpu_memory_gb=2 dry_run=true "${common[@]}" 2>&1)
rc=$?
[ $rc = 1 ] && grep -q "the estimated memory per GPU is .* more than gpu_memory_gb=2" <<<"$out" &&
  pass "pre-flight refuses the oversize fine-tuning config" || fail "exit $rc: $out"
grep -q "Nearest configs that fit" <<<"$out" && pass "and lists the nearest configs that fit" || fail "$out"

echo "$failures failure(s)"
[ $failures = 0 ]
