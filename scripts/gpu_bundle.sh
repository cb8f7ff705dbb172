#!/usr/bin/env bash
# Packs what a GPU machine without apt needs to run bignlp's GPU checks and benchmarks:
# the stripped GPU programs (test_parity, test_gpu_programs, bench_cuda_kernels, bench_gpt_cuda,
# and the programs test_gpu_programs runs: bignlp, bignlp-bind, bignlp-train, bignlp-evaluate)
# and every non-system shared library they load, into <build>/gpu-bundle/bundle.tar.xz (plus a
# manifest).
#
#   scripts/gpu_bundle.sh [BUILD_DIR]        default BUILD_DIR: build (configured with a CUDA preset)
#
# Left out on purpose: glibc (libc, libm, libpthread, libdl, librt, ld-linux), the CUDA driver
# (libcuda) and the CUDA libraries the GPU machine's own toolkit provides (libcublasLt, libcudart,
# libnccl); scripts/gpu_checks.sh finds those there (or in PyTorch's NVIDIA wheels). libstdc++ and
# libgcc_s go into lib/fallback/, used only when the machine's own are too old. The archive is what
# a GPU session carries (the carry limit is 64 MiB); every program holds the same kernels, so xz
# gets a dictionary larger than the programs together and stores them once (about 10 MiB in all);
# scripts/gpu_checks.sh unpacks it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
programs=(tests/test_parity tests/test_gpu_programs bin/bench_cuda_kernels bin/bench_gpt_cuda
          bin/bignlp bin/bignlp-bind bin/bignlp-train bin/bignlp-evaluate)

if [[ ! -f $build/CMakeCache.txt || ! -d $build/kernels ]]; then
  echo "gpu_bundle.sh: $build is not a CUDA build; run: cmake --preset cuda" >&2
  exit 2
fi
targets=()
for p in "${programs[@]}"; do targets+=("$(basename "$p")"); done
cmake --build "$build" --target "${targets[@]}" -j "${BIGNLP_JOBS:-2}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bundle/bin" "$stage/bundle/lib/fallback"
skip_re='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libcuda\.so|libcublas|libcudart|libnccl|libnvidia)'
fallback_re='^(libstdc\+\+\.so|libgcc_s\.so)'
for p in "${programs[@]}"; do
  [[ -x $build/$p ]] || { echo "gpu_bundle.sh: $build/$p was not built" >&2; exit 1; }
  strip -o "$stage/bundle/bin/$(basename "$p")" "$build/$p"
  while read -r name path; do
    name=$(basename "$name")
    [[ $name =~ $skip_re ]] && continue
    if [[ $path == "not" || -z $path ]]; then
      echo "gpu_bundle.sh: $p needs $name, which is not found here" >&2
      exit 1
    fi
    dest="$stage/bundle/lib"
    [[ $name =~ $fallback_re ]] && dest="$stage/bundle/lib/fallback"
    [[ -e $dest/$name ]] || cp -L "$path" "$dest/$name"
  done < <(ldd "$build/$p" | awk '$2 == "=>" {print $1, $3; next} {print $1, $1}')
done

{
  echo "bignlp GPU bundle"
  echo "built: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified tree)') on $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cuda architectures: $(grep -ho -- '--generate-code=arch=[^ ]*' "$build/build.ninja" 2>/dev/null | sort -u | tr '\n' ' ')"
  echo "build type: $(grep '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)"
  echo "needs from the GPU machine: $(for p in "${programs[@]}"; do ldd "$build/$p"; done | awk '{print $1}' | grep -E '^(libcublas|libcudart|libnccl|libcuda)' | sort -u | tr '\n' ' ')"
  echo "newest glibc symbol: $(for p in "${programs[@]}"; do objdump -T "$build/$p"; done | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)"
  echo "files:"
  (cd "$stage/bundle" && find . -type f -printf '  %p %s\n' | sort)
} > "$stage/bundle/MANIFEST"

out="$build/gpu-bundle"
rm -rf "$out"
mkdir -p "$out"
tar -C "$stage" -cf - bundle | xz -T"${BIGNLP_JOBS:-2}" --lzma2=preset=6,dict=192MiB > "$out/bundle.tar.xz"
cp "$stage/bundle/MANIFEST" "$out/MANIFEST"
size=$(stat -c %s "$out/bundle.tar.xz")
echo "gpu_bundle.sh: wrote $out/bundle.tar.xz ($((size / 1048576)) MiB); carry '$out' and run scripts/gpu_checks.sh"
if (( size > 56 * 1048576 )); then
  echo "gpu_bundle.sh: warning: the archive leaves little of the 64 MiB carry limit; configure with" >&2
  echo "  -DCMAKE_CUDA_ARCHITECTURES=90a-real (the GPU machine's architecture only)" >&2
fi
