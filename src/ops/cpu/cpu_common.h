// Internal helpers of the CPU reference ops: element conversion, dtype dispatch, OpenMP loops.
//
// Every op computes in fp32 (double where a long sum would otherwise lose digits) and converts at
// load/store. Work is split over independent rows or columns only, so results do not depend on
// the thread count.
#pragma once

#include <omp.h>

#include <cstdint>
#include <utility>

#include "bignlp/core/check.h"
#include "bignlp/ops/context.h"
#include "bignlp/ops/philox.h"
#include "bignlp/tensor/half.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::ops::cpu {

/// Dropout multipliers of elements [first, first + n) of stream (seed, offset): out[i] is
/// 1/(1-p) when kept and 0 when dropped (philox.h's dropout_keep), drawing one Philox block per
/// four elements.
inline void dropout_multipliers(std::uint64_t seed, std::uint64_t offset, std::uint64_t first, std::int64_t n, float p,
                                float* out) {
  const float keep_scale = 1.0f / (1.0f - p);
  std::int64_t i = 0;
  while (i < n) {
    const std::uint64_t index = first + static_cast<std::uint64_t>(i);
    float u[4];
    philox_uniform4(seed, offset, index >> 2, u);
    for (std::uint64_t lane = index & 3; lane < 4 && i < n; ++lane, ++i) out[i] = u[lane] >= p ? keep_scale : 0.0f;
  }
}

inline float to_f(float v) { return v; }
inline float to_f(BFloat16 v) { return float_from_bf16(v); }
inline float to_f(Float16 v) { return float_from_fp16(v); }

template <typename T>
inline T from_f(float v);
template <>
inline float from_f<float>(float v) { return v; }
template <>
inline BFloat16 from_f<BFloat16>(float v) { return bf16_from_float(v); }
template <>
inline Float16 from_f<Float16>(float v) { return fp16_from_float(v); }

/// Calls fn(T{}) with T the C++ storage type of a floating dtype.
template <typename Fn>
decltype(auto) dispatch_float(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(float{});
    case DType::kBF16: return fn(BFloat16{});
    case DType::kF16: return fn(Float16{});
    default: break;
  }
  BIGNLP_CHECK(false, "expected a floating dtype, got {}", dtype_name(dtype));
  return fn(float{});
}

inline int num_threads(const OpContext& ctx) { return ctx.cpu_threads > 0 ? ctx.cpu_threads : omp_get_max_threads(); }

/// Row-major C (m, n) = alpha op(A) op(B) + beta C through OpenBLAS, split over the context's
/// OpenMP threads (OpenBLAS itself runs single-threaded: one thread pool in the process). Inside
/// an OpenMP parallel region it runs on the calling thread. Results do not depend on the thread
/// count. Leading dimensions as BLAS takes them (of the stored, untransposed matrices).
void sgemm(const OpContext& ctx, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

/// Below this many element-operations a loop runs on the calling thread: waking a team costs more.
inline constexpr std::int64_t kParallelWork = std::int64_t{1} << 15;

/// fn(i) for i in [0, n), statically split over the context's threads when n * work_per_item
/// (a rough count of element operations per item) is large enough to pay for it.
template <typename Fn>
void parallel_for(const OpContext& ctx, std::int64_t n, std::int64_t work_per_item, Fn&& fn) {
#pragma omp parallel for schedule(static) num_threads(num_threads(ctx)) if (n > 1 && n * work_per_item >= kParallelWork)
  for (std::int64_t i = 0; i < n; ++i) fn(i);
}

/// fn(begin, end) over chunks of [0, n) of at most `chunk` elements, split over threads.
template <typename Fn>
void parallel_chunks(const OpContext& ctx, std::int64_t n, std::int64_t chunk, Fn&& fn) {
  const std::int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(num_threads(ctx)) if (chunks > 1 && n >= kParallelWork)
  for (std::int64_t c = 0; c < chunks; ++c) fn(c * chunk, std::min(n, (c + 1) * chunk));
}

}  // namespace bignlp::ops::cpu
