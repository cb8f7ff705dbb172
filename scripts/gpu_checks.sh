#!/usr/bin/env bash
# Everything that needs a GPU, in one command, with logs in OUT_DIR:
#   parity    tests/parity: every CUDA op vs its CPU reference, the GPT training step, the 126m
#             loss curve
#   train     tests/gpu: the programs on the GPU against the CPU -- bignlp-train (tiny in fp32 and
#             bf16, gpt3/126m-shaped, NCCL on one rank), checkpoints saved on one device and resumed
#             on the other, bignlp-evaluate scoring, and the launcher's local executor with
#             training.trainer.accelerator=gpu; parity + train are the cases of `ctest --preset gpu`
#   sanitize  the parity suite under compute-sanitizer: memcheck (all but *Large*), racecheck
#             (the kernels with shared memory)
#   bench     tools/bench/run_gpu_bench.sh: bignlp vs PyTorch table (docs/performance.md)
#
#   scripts/gpu_checks.sh OUT_DIR [parity|train|sanitize|bench|bench:MODEL ...]   (default: all four)
#
# The programs come from a GPU bundle (scripts/gpu_bundle.sh: build*/gpu-bundle/bundle.tar.xz,
# unpacked to a temporary folder; BIGNLP_BUNDLE=path overrides) or, when none exists, from
# build/ directly. libcublasLt comes from the machine's CUDA toolkit or its PyTorch wheels.
# Files written (at most eight, so a device session gets them all back): device.txt, parity.log
# (the train stage appends to it), memcheck.log, racecheck.log, bench.jsonl, bench.log, bench.md,
# summary.txt. Each stage is cut
# off after BIGNLP_STAGE_TIMEOUT seconds (default 540: one device call allows 600).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: gpu_checks.sh OUT_DIR [parity|sanitize|bench|bench:MODEL ...]}
shift
stages=("$@")
[[ ${#stages[@]} -eq 0 ]] && stages=(parity train sanitize bench)
mkdir -p "$out"
out=$(cd "$out" && pwd)
summary=$out/summary.txt
: > "$summary"
limit=${BIGNLP_STAGE_TIMEOUT:-540}
note() { echo "$*" | tee -a "$summary"; }

# --- programs ----------------------------------------------------------------------------------
bundle=${BIGNLP_BUNDLE:-}
if [[ -z $bundle ]]; then
  for cand in "$root"/build/gpu-bundle/bundle.tar.xz "$root"/build-*/gpu-bundle/bundle.tar.xz; do
    [[ -f $cand ]] && { bundle=$cand; break; }
  done
fi
if [[ -n $bundle ]]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bignlp-bundle.XXXXXX")
  trap 'rm -rf "$dir"' EXIT
  xz -dc "$bundle" | tar -C "$dir" -xf - || { note "cannot unpack $bundle"; exit 1; }
  bin=$dir/bundle/bin
  parity_bin=$bin/test_parity
  programs_bin=$bin/test_gpu_programs
  libdir=$dir/bundle/lib
  note "programs: $bundle ($(sed -n 2p "$dir/bundle/MANIFEST"))"
else
  bin=$root/build/bin
  parity_bin=$root/build/tests/test_parity
  programs_bin=$root/build/tests/test_gpu_programs
  libdir=
  note "programs: $root/build (no GPU bundle found)"
fi

# libcublasLt.so.13 and libnccl.so.2 from this machine: its toolkit, then PyTorch's NVIDIA wheels.
cuda_libs=()
for lib in libcublasLt.so.13 libnccl.so.2; do
  found=
  for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           /usr/local/cuda/lib; do
    d=$(readlink -f "$d" 2>/dev/null || echo "$d")
    if [[ -e $d/$lib ]]; then
      found=1
      [[ " ${cuda_libs[*]:-} " != *" $d "* ]] && cuda_libs+=("$d")
      break
    fi
  done
  [[ -n $found ]] && continue
  while IFS= read -r d; do [[ -n $d && " ${cuda_libs[*]:-} " != *" $d "* ]] && cuda_libs+=("$d"); done < <(LIB=$lib python3 - <<'PY' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for lib in glob.glob(os.path.join(r, "nvidia", "**", os.environ["LIB"]), recursive=True):
        print(os.path.dirname(lib))
        raise SystemExit
PY
)
done
ld_path="${libdir:+$libdir:}$(IFS=:; echo "${cuda_libs[*]:-}")"
export LD_LIBRARY_PATH="$ld_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! "$parity_bin" --gtest_list_tests > /dev/null 2>"$out/summary.probe"; then
  if [[ -n $libdir ]] && LD_LIBRARY_PATH="$libdir/fallback:$LD_LIBRARY_PATH" "$parity_bin" --gtest_list_tests > /dev/null 2>&1; then
    export LD_LIBRARY_PATH="$libdir/fallback:$LD_LIBRARY_PATH"
    note "using the bundled libstdc++/libgcc_s (this machine's are older)"
  else
    note "the programs do not start here:"; cat "$out/summary.probe" | tee -a "$summary"
    rm -f "$out/summary.probe"
    exit 1
  fi
fi
rm -f "$out/summary.probe"
note "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

{
  nvidia-smi 2>&1 || echo "nvidia-smi failed"
  echo
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
  echo
  command -v compute-sanitizer && compute-sanitizer --version 2>&1 | head -3
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
} > "$out/device.txt"
note "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"

stage_rc() { note "stage $1: $([[ $2 -eq 0 ]] && echo ok || echo "FAILED (exit $2)") after $3 s"; }

for stage in "${stages[@]}"; do
  start=$SECONDS
  case $stage in
    parity)
      timeout "$limit" "$parity_bin" --gtest_color=no > "$out/parity.log" 2>&1
      rc=$?
      grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/parity.log" | tail -40 >> "$summary"
      stage_rc parity $rc $((SECONDS - start))
      ;;
    train)
      # The programs run from $bin (bignlp's local executor too); conf/ comes from this tree.
      {
        echo
        echo "=== train: tests/gpu (test_gpu_programs) ==="
      } >> "$out/parity.log"
      (cd "$root" && BIGNLP_TEST_BIN_DIR=$bin BIGNLP_TEST_SOURCE_DIR=$root timeout "$limit" "$programs_bin" \
        --gtest_color=no) >> "$out/parity.log" 2>&1
      rc=$?
      sed -n '/=== train: /,$p' "$out/parity.log" | grep -E '^\[  (PASSED|FAILED|SKIPPED) |^(tiny|126m|launcher|GPU|CPU|nccl).* step ' \
        | tail -60 >> "$summary"
      stage_rc train $rc $((SECONDS - start))
      ;;
    sanitize)
      sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
      half=$((limit / 2))
      timeout "$half" "$sanitizer" --tool memcheck --leak-check no --error-exitcode 90 \
        "$parity_bin" --gtest_color=no --gtest_filter='-*Large*' > "$out/memcheck.log" 2>&1
      rc=$?
      grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' "$out/memcheck.log" | tail -5 >> "$summary"
      stage_rc "sanitize (memcheck)" $rc $((SECONDS - start))
      start=$SECONDS
      timeout "$half" "$sanitizer" --tool racecheck --racecheck-report hazard --error-exitcode 90 \
        "$parity_bin" --gtest_color=no \
        --gtest_filter='*Attention*:*LayerNorm*:*CrossEntropy*:*Argmax*:*SumSquares*:*Embedding*-*Large*' \
        > "$out/racecheck.log" 2>&1
      rc=$?
      grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  (PASSED|FAILED) ' "$out/racecheck.log" | tail -5 >> "$summary"
      stage_rc "sanitize (racecheck)" $rc $((SECONDS - start))
      ;;
    bench|bench:*)
      models=()
      [[ $stage == bench:* ]] && IFS=, read -r -a models <<< "${stage#bench:}"
      timeout "$limit" "$root/tools/bench/run_gpu_bench.sh" "$out" "$bin" "${models[@]}"
      stage_rc bench $? $((SECONDS - start))
      ;;
    *) note "unknown stage '$stage' (expected parity, train, sanitize, bench or bench:MODEL[,MODEL])" ;;
  esac
done
echo
cat "$summary"
[[ -f $out/bench.md ]] && { echo; cat "$out/bench.md"; }
exit 0
