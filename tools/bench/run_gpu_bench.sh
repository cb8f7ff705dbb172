#!/usr/bin/env bash
# The GPU benchmark table in one command: bignlp's CUDA GEMM and attention kernels and its GPT
# training step next to PyTorch (tools/bench/torch_gpt.py: torch.compile, SDPA, fused AdamW, bf16
# autocast) on the same GPU, in the same run.
#
#   tools/bench/run_gpu_bench.sh OUT_DIR [BIN_DIR] [MODEL...]
# BIN_DIR holds bench_cuda_kernels and bench_gpt_cuda (default build/bin); MODEL picks rows from
# gpt2-124m gpt3-126m gpt-1.3b (default all) or "kernels" for the GEMM/attention part alone.
# Writes OUT_DIR/bench.jsonl (one record per measurement), OUT_DIR/bench.log (stderr of every
# program) and OUT_DIR/bench.md (the table, also printed). PYTHON selects the interpreter (python3).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run_gpu_bench.sh OUT_DIR [BIN_DIR] [MODEL...]}
bin=${2:-$here/../../build/bin}
shift $(( $# >= 2 ? 2 : $# ))
python=${PYTHON:-python3}
mkdir -p "$out"
jsonl=$out/bench.jsonl
log=$out/bench.log
: > "$jsonl"
: > "$log"
failures=0

# name layers hidden heads seq micro-batch
models=(
  "gpt2-124m 12 768 12 1024 16"
  "gpt3-126m 12 768 12 2048 8"
  "gpt-1.3b 24 2048 16 2048 4"
)
want=("$@")
[[ ${#want[@]} -eq 0 ]] && want=(kernels gpt2-124m gpt3-126m gpt-1.3b)
wanted() { local w; for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

run() {  # run LABEL CMD...: JSON lines to the jsonl, everything else to the log
  echo "== $1: ${*:2}" >> "$log"
  local start=$SECONDS
  "${@:2}" 2>>"$log" | tee -a "$log" | grep '^{' >> "$jsonl"
  local rc=${PIPESTATUS[0]}
  echo "== $1: exit $rc after $((SECONDS - start)) s" | tee -a "$log" >&2
  (( rc == 0 )) || failures=$((failures + 1))
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader >> "$log" 2>&1 || true
if wanted kernels; then
  run "bignlp kernels" "$bin/bench_cuda_kernels"
  run "torch gemm" "$python" "$here/torch_gpt.py" --mode gemm
  run "torch attention" "$python" "$here/torch_gpt.py" --mode attention
fi
for m in "${models[@]}"; do
  read -r name layers hidden heads seq mbs <<< "$m"
  wanted "$name" || continue
  args=(--name "$name" --layers "$layers" --hidden "$hidden" --heads "$heads" --seq-length "$seq" --micro-batch "$mbs")
  run "bignlp $name" "$bin/bench_gpt_cuda" "${args[@]}"
  # The same MFU denominator for the peer: the peak bench_gpt_cuda took from the device table.
  peak=$(grep "\"name\": \"$name\"" "$jsonl" | grep -o '"peak_tflops": [0-9.e+]*' | tail -1 | awk '{print $2}')
  run "torch $name" "$python" "$here/torch_gpt.py" --mode model "${args[@]}" ${peak:+--peak-tflops "$peak"}
done
"$python" "$here/bench_table.py" "$jsonl" | tee "$out/bench.md"
(( failures == 0 )) || { echo "run_gpu_bench.sh: $failures program(s) failed; see $log" >&2; exit 1; }
