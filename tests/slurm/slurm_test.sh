#!/usr/bin/env bash
# The launcher against a real one-node Slurm cluster (Debian's slurm-wlm, started here with
# tests/slurm/slurm-local.sh on a free localhost port, with fake GPUs), torn down at exit.
#
#   slurm_test.sh stage_sequence BIGNLP BIN_DIR  bignlp submits data_preparation (job arrays) ->
#       training (2 tasks) -> conversion, whose programs are bignlp-test-worker under the
#       workers' names; checks the order of every job and array element, the file numbers of
#       the array elements, the logs and launcher.log; then a stage sequence with one failing array
#       element: the element after it and the later stages must never run.
#   slurm_test.sh test-only GOLDEN_DIR           `sbatch --test-only` on every Slurm script in the
#       golden files (scaled down to this node: one node, one task, one CPU per task).
#
# Exits 77 (ctest: skipped) with a message when not root or Slurm is not installed; CI runs as
# root after `scripts/bootstrap.sh --test` has installed slurm-wlm.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
failures=0

[ "$(id -u)" = 0 ] || skip "the local Slurm cluster needs root (slurmctld and slurmd run as root)"
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null ||
  skip "Slurm is not installed (scripts/bootstrap.sh --test installs slurm-wlm)"

# A free pair of ports (slurmctld, slurmd) so that parallel test runs do not meet.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((6900 + (RANDOM % 400) * 2))
for _ in $(seq 50); do
  port_free "$port" && port_free $((port + 1)) && break
  port=$((port + 2))
done

work=$(mktemp -d /tmp/bignlp-slurm.XXXXXX)
cluster=$work/cluster
cleanup() {
  bash "$here/slurm-local.sh" stop "$cluster" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
SLURM_LOCAL_PORT=$port SLURM_LOCAL_GPUS=8 bash "$here/slurm-local.sh" start "$cluster" 2>&1 | tail -1 ||
  { echo "FAIL: the Slurm cluster did not start"; exit 1; }
export SLURM_CONF=$cluster/slurm.conf

state() { squeue -h -t all -j "$1" -o '%T' 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# wait_jobs SECONDS ID...: until every job (all array elements) has left PENDING/RUNNING.
wait_jobs() {
  local secs=$1 i j busy
  shift
  for ((i = 0; i < secs * 10; i++)); do
    busy=0
    for j in "$@"; do
      case " $(state "$j") " in *PENDING*|*RUNNING*|*CONFIGURING*|*COMPLETING*) busy=1 ;; esac
    done
    [ $busy = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# field LINE KEY: a key=value field of a worker record line
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
# record_time RECORD EVENT PROG STEP [ARRAY_TASK]: time_ns of the matching line (first match)
record_times() {
  local file=$1 event=$2 prog=$3 step=$4 task=${5:-}
  grep "^$event prog=$prog step=$step " "$file" | { if [ -n "$task" ]; then grep " array_task=$task "; else cat; fi; } |
    sed -n 's/.* time_ns=\([0-9]*\).*/\1/p'
}
max() { sort -n | tail -1; }
min() { sort -n | head -1; }

run_stage_sequence_test() {
  local bignlp=$1 bin=$2 results=$work/results record=$work/record.txt out ids
  mkdir -p "$work/bin"
  for p in bignlp-preprocess bignlp-train bignlp-convert; do ln -s "$bin/bignlp-test-worker" "$work/bin/$p"; done
  ln -s "$bin/bignlp-bind" "$work/bin/bignlp-bind"
  common=(cluster_type=bcm "data_preparation.file_numbers='0,2'" data_preparation.run.node_array_size=2
          training=gpt3/tiny training.trainer.devices=2 training.trainer.accelerator=gpu
          cluster.gpus_per_node=2 conversion.run.model_train_name=gpt3_tiny
          "bin_dir=$work/bin" "bignlp_path=$work" "+env_vars.BIGNLP_TEST_RECORD=$record")

  echo "== a stage sequence of data_preparation, training and conversion"
  out=$("$bignlp" "stages=[data_preparation,training,conversion]" "${common[@]}" "base_results_dir=$results" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/  | /'
  [ $rc = 0 ] || { fail "bignlp exited with $rc"; return; }
  ids=$(sed -n 's/.* as job \([0-9]*\)$/\1/p' <<<"$out" | tr '\n' ' ')
  [ "$(wc -w <<<"$ids")" = 5 ] && pass "5 jobs submitted: $ids" || fail "expected 5 submitted jobs, got '$ids'"
  # shellcheck disable=SC2086
  wait_jobs 120 $ids || fail "jobs still running after 120 s"
  for j in $ids; do
    st=$(state "$j")
    [ "$st" = COMPLETED ] && pass "job $j COMPLETED" || fail "job $j is '$st' ($(scontrol show job "$j" 2>/dev/null | grep -o 'Reason=[^ ]*' | head -1))"
  done

  # Array elements: the array task id is the file number, element-wise ordering (aftercorr).
  for f in 0 2; do
    for step in download extract preprocess; do
      n=$(grep -c "^end prog=bignlp-preprocess step=$step .* array_task=$f " "$record")
      [ "$n" = 1 ] && pass "$step ran once for file $f" || fail "$step ran $n times for file $f"
    done
    d_end=$(record_times "$record" end bignlp-preprocess download $f)
    e_start=$(record_times "$record" start bignlp-preprocess extract $f)
    e_end=$(record_times "$record" end bignlp-preprocess extract $f)
    p_start=$(record_times "$record" start bignlp-preprocess preprocess $f)
    [ -n "$d_end" ] && [ -n "$e_start" ] && [ "$e_start" -gt "$d_end" ] && [ -n "$p_start" ] && [ "$p_start" -gt "$e_end" ] &&
      pass "file $f: download < extract < preprocess" || fail "file $f: steps out of order"
  done
  grep -q "array_task=1 " "$record" && fail "an element for file 1 ran (file_numbers=0,2)"

  # Training after all of data preparation, 2 tasks with Slurm's variables; conversion after it.
  prep_end=$(grep "^end prog=bignlp-preprocess step=preprocess " "$record" | sed -n 's/.* time_ns=\([0-9]*\).*/\1/p' | max)
  train_start=$(record_times "$record" start bignlp-train "" | min)
  train_end=$(record_times "$record" end bignlp-train "" | max)
  conv_start=$(record_times "$record" start bignlp-convert "" | min)
  [ -n "$train_start" ] && [ "$train_start" -gt "$prep_end" ] && pass "training started after data preparation ended" ||
    fail "training did not wait for data preparation"
  [ -n "$conv_start" ] && [ "$conv_start" -gt "$train_end" ] && pass "conversion started after training ended" ||
    fail "conversion did not wait for training"
  ranks=$(grep "^start prog=bignlp-train " "$record" | while read -r l; do echo "$(field "$l" procid)/$(field "$l" ntasks)"; done | sort | tr '\n' ' ')
  [ "$ranks" = "0/2 1/2 " ] && pass "training ran as 2 tasks (procid/ntasks: $ranks)" || fail "training tasks: '$ranks'"

  # Logs and records where the results layout says.
  dl=$(ls "$results"/download_gpt3_pile/download/log-bignlp-download_gpt3_pile_*_2.out 2>/dev/null | head -1)
  [ -n "$dl" ] && grep -q "hello from bignlp-preprocess" "$dl" && pass "array element log $dl" || fail "no download log for element 2"
  tl=$(ls "$results"/gpt3_tiny/log-bignlp-gpt3_tiny_*.out 2>/dev/null | head -1)
  [ -n "$tl" ] && grep -q "hello from bignlp-train rank 1" "$tl" && grep -q "hello from bignlp-train rank 0" "$tl" &&
    pass "training log $tl has both ranks" || fail "training log missing or incomplete"
  grep -q "^Submitted batch job [0-9]*$" "$results/gpt3_tiny/launcher.log" && pass "launcher.log records the job id" ||
    fail "launcher.log: $(cat "$results/gpt3_tiny/launcher.log" 2>&1)"
  [ -f "$results/gpt3_tiny/gpt3_tiny_hydra.yaml" ] && [ -f "$results/gpt3_tiny/launcher_cmd.log" ] &&
    pass "config and command line saved" || fail "gpt3_tiny_hydra.yaml or launcher_cmd.log missing"

  echo "== a failing array element blocks what depends on it"
  : >"$record"
  out=$("$bignlp" "stages=[data_preparation,training,conversion]" "${common[@]}" "base_results_dir=$work/results2" \
        "+env_vars.BIGNLP_TEST_FAIL=bignlp-preprocess:extract:2" 2>&1)
  rc=$?
  [ $rc = 0 ] || { fail "bignlp exited with $rc: $out"; return; }
  ids=$(sed -n 's/.* as job \([0-9]*\)$/\1/p' <<<"$out" | tr '\n' ' ')
  # shellcheck disable=SC2086
  wait_jobs 120 $ids || fail "jobs still pending after 120 s (a dependency that can never be met must cancel them)"
  grep -q "^end prog=bignlp-preprocess step=preprocess .* array_task=0 " "$record" &&
    pass "preprocess of file 0 ran (its extract succeeded)" || fail "preprocess of file 0 did not run"
  grep -q "step=preprocess .* array_task=2 " "$record" && fail "preprocess of file 2 ran after its extract failed" ||
    pass "preprocess of file 2 never ran"
  grep -q "prog=bignlp-train" "$record" && fail "training ran after data preparation failed" || pass "training never ran"
  grep -q "prog=bignlp-convert" "$record" && fail "conversion ran after a failure" || pass "conversion never ran"
  read -r -a idv <<<"$ids"
  st=$(state "${idv[3]}")
  [ "$st" = CANCELLED ] && pass "the training job was cancelled ($st)" || fail "training job state '$st'"
}

run_test_only() {
  local golden=$1 n=0 bad=0 s out
  while IFS= read -r -d '' s; do
    n=$((n + 1))
    # --nodelist: this cluster's node in place of a script's own (cluster_validation names its nodes)
    out=$(sbatch --test-only --nodes=1 --ntasks-per-node=1 --cpus-per-task=1 --partition=debug \
      --nodelist="$(sinfo -h -o %N | head -1)" "$s" 2>&1)
    if [ $? = 0 ]; then
      echo "ok: ${s#"$golden"/}"
    else
      bad=$((bad + 1))
      fail "${s#"$golden"/}: $out"
    fi
  done < <(find "$golden" -path '*/expected/bcm*' -name '*_submission.sh' -print0 | sort -z)
  [ $n -gt 0 ] || fail "no Slurm golden scripts found under $golden"
  echo "sbatch --test-only: $((n - bad)) of $n scripts accepted"
}

case "$mode" in
  stage_sequence) [ $# = 3 ] || { echo "usage: $0 stage_sequence BIGNLP BIN_DIR"; exit 2; }; run_stage_sequence_test "$2" "$3" ;;
  test-only) [ $# = 2 ] || { echo "usage: $0 test-only GOLDEN_DIR"; exit 2; }; run_test_only "$2" ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
echo "$failures failure(s)"
[ $failures = 0 ]
