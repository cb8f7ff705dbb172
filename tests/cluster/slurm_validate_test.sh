#!/usr/bin/env bash
# The cluster_validation stage on a real one-node Slurm cluster (tests/slurm/slurm-local.sh, 2 fake
# GPUs): bignlp submits the job; inside it bignlp-validate runs `srun --overlap` steps on the node:
# a fake dcgmi (on PATH, exported into the job) and a gloo bench_comm with 2 tasks.
#   slurm_validate_test.sh BIGNLP BIN_DIR
# Exits 77 (skipped) when not root or Slurm is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bignlp=$1
bin=$(cd "$2" && pwd)
skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "the local Slurm cluster needs root"
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null ||
  skip "Slurm is not installed (scripts/bootstrap.sh --test installs slurm-wlm)"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((7300 + (RANDOM % 300) * 2))
for _ in $(seq 50); do
  port_free "$port" && port_free $((port + 1)) && break
  port=$((port + 2))
done
work=$(mktemp -d /tmp/bignlp-slurm-validate.XXXXXX)
cluster=$work/cluster
trap 'bash "$here/../slurm/slurm-local.sh" stop "$cluster" >/dev/null 2>&1; rm -rf "$work"' EXIT
SLURM_LOCAL_PORT=$port SLURM_LOCAL_GPUS=2 bash "$here/../slurm/slurm-local.sh" start "$cluster" 2>&1 | tail -1 ||
  { echo "FAIL: the Slurm cluster did not start"; exit 1; }
export SLURM_CONF=$cluster/slurm.conf
node=$(sinfo -h -o %N | head -1)

mkdir -p "$work/path"
cat >"$work/path/dcgmi" <<'SH'
#!/bin/bash
echo "+---------------------------+------------------------------------------------+"
echo "| Diagnostic                | Result                                         |"
echo "+===========================+================================================+"
echo "| Denylist                  | Pass                                           |"
echo "| GPU Memory                | Fail - GPU: 1                                  |"
echo "| Info                      | ran on $(hostname -s) step ${SLURM_STEP_ID:-none}  |"
echo "+---------------------------+------------------------------------------------+"
SH
chmod +x "$work/path/dcgmi"
export PATH="$work/path:$PATH"

out=$("$bignlp" 'stages=[cluster_validation]' cluster_type=bcm cluster.gpus_per_node=2 "bin_dir=$bin" \
  "base_results_dir=$work/results" cluster_validation.nodes=1 "cluster_validation.nodelist=\"$node\"" \
  cluster_validation.backend=gloo cluster_validation.tasks_per_node=2 cluster_validation.message_bytes=65536 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
[ $rc = 0 ] || { echo "FAIL: bignlp exited with $rc"; exit 1; }
id=$(sed -n 's/.* as job \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
for _ in $(seq 600); do
  case "$(squeue -h -t all -j "$id" -o %T 2>/dev/null)" in PENDING|RUNNING|CONFIGURING|COMPLETING|"") sleep 0.1 ;; *) break ;; esac
done
state=$(squeue -h -t all -j "$id" -o %T 2>/dev/null)
summary=$work/results/cluster_validation/summary.txt
log=$(ls "$work"/results/cluster_validation/log-*_"$id".out 2>/dev/null | head -1)
[ "$state" = FAILED ] && pass "the job fails: the node failed its diagnostics" || fail "job state '$state'"
grep -q "^Failing nodes (1 of 1): $node$" "$summary" 2>/dev/null && pass "summary lists $node" ||
  fail "summary: $(cat "$summary" 2>&1) log: $(cat "$log" "${log%.out}.err" 2>&1)"
grep -q "Info: ran on .* step [0-9]" "$summary" && pass "dcgmi ran as a Slurm step" || fail "dcgmi not in a step"
grep -Eq "^  $node +[0-9.]+ GB/s$" "$summary" && pass "gloo bench_comm measured the node in a 2-task step" ||
  fail "no bandwidth figure: $(cat "$work"/results/cluster_validation/bandwidth/*.log 2>&1)"
echo "$failures failure(s)"
[ $failures = 0 ]
