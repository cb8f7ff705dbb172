// Cross entropy over the (padded) vocabulary and argmax: one block per row of logits.
//
// Forward reads each logit once: every thread keeps an online (max, sum of exp) pair over its
// strided columns, and the block merges the pairs in a fixed order; the logits stay in their
// stored dtype (no fp32 copy of the (N, V) matrix is ever made). Backward reads the row once more
// and writes exp(z - lse) - onehot, scaled by the row's loss gradient, in place when asked.
#include <cfloat>

#include "kernels/common.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kThreads = 512;

struct MaxSum {
  float m, s;
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.0f};
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

template <typename T>
__global__ void cross_entropy_forward_kernel(const T* logits, std::int64_t v, std::int64_t ld,
                                             const std::int32_t* targets, std::int64_t vocab_start, float* losses,
                                             float* lse) {
  __shared__ MaxSum scratch[kThreads / 32];
  const std::int64_t row = blockIdx.x;
  const T* z = logits + row * ld;
  MaxSum acc{-INFINITY, 0.0f};
  for (std::int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float x = to_float(z[j]);
    if (x == -INFINITY) continue;  // exp(-inf) adds nothing; skipping avoids inf - inf
    if (x > acc.m) {
      acc.s = acc.s * expf(acc.m - x) + 1.0f;
      acc.m = x;
    } else {
      acc.s += expf(x - acc.m);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other{__shfl_xor_sync(0xffffffffu, acc.m, o), __shfl_xor_sync(0xffffffffu, acc.s, o)};
    acc = merge(acc, other);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    MaxSum total = scratch[0];
    for (int w = 1; w < kThreads / 32; ++w) total = merge(total, scratch[w]);
    const float l = total.m + logf(total.s);
    const std::int64_t t = static_cast<std::int64_t>(targets[row]) - vocab_start;
    const float zt = (t >= 0 && t < v) ? to_float(z[t]) : 0.0f;
    lse[row] = l;
    losses[row] = l - zt;
  }
}

template <typename T, typename D>
__global__ void cross_entropy_backward_kernel(const T* logits, std::int64_t v, std::int64_t ld,
                                              const std::int32_t* targets, std::int64_t vocab_start, const float* lse,
                                              const float* dlosses, D* dlogits, std::int64_t ldd) {
  const std::int64_t row = blockIdx.x;
  const std::int64_t t = static_cast<std::int64_t>(targets[row]) - vocab_start;
  const float g = dlosses[row], l = lse[row];
  const T* z = logits + row * ld;
  D* d = dlogits + row * ldd;
  for (std::int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    float p = expf(to_float(z[j]) - l);
    if (j == t) p -= 1.0f;
    d[j] = from_float<D>(p * g);
  }
}

template <typename T>
__global__ void argmax_kernel(const T* x, std::int64_t v, std::int64_t ld, std::int32_t* out) {
  __shared__ float best_v[kThreads / 32];
  __shared__ std::int64_t best_j[kThreads / 32];
  const std::int64_t row = blockIdx.x;
  const T* z = x + row * ld;
  float bv = -INFINITY;
  std::int64_t bj = INT64_MAX;
  for (std::int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float val = to_float(z[j]);
    if (val > bv || (val == bv && j < bj)) {  // NaN never wins (matches the CPU's strict '>')
      bv = val;
      bj = j;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const std::int64_t oj = __shfl_xor_sync(0xffffffffu, bj, o);
    if (ov > bv || (ov == bv && oj < bj)) {
      bv = ov;
      bj = oj;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    best_v[warp] = bv;
    best_j[warp] = bj;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w)
      if (best_v[w] > bv || (best_v[w] == bv && best_j[w] < bj)) {
        bv = best_v[w];
        bj = best_j[w];
      }
    // The reference scans left to right with '>': a NaN in column 0 (or a row of NaNs) gives 0.
    const float first = to_float(z[0]);
    if (first != first || bj == INT64_MAX) bj = 0;
    out[row] = static_cast<std::int32_t>(bj);
  }
}

}  // namespace

void launch_cross_entropy_forward(const void* logits, DType dtype, std::int64_t n, std::int64_t v, std::int64_t ld,
                                  const std::int32_t* targets, std::int64_t vocab_start, float* losses, float* lse,
                                  cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    cross_entropy_forward_kernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
        static_cast<const T*>(logits), v, ld, targets, vocab_start, losses, lse);
  });
}

void launch_cross_entropy_backward(const void* logits, DType dtype, std::int64_t n, std::int64_t v, std::int64_t ld,
                                   const std::int32_t* targets, std::int64_t vocab_start, const float* lse,
                                   const float* dlosses, void* dlogits, DType dlogits_dtype, std::int64_t ld_dlogits,
                                   cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatch_float(dlogits_dtype, [&](auto dtag) {
      using D = decltype(dtag);
      cross_entropy_backward_kernel<T, D><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
          static_cast<const T*>(logits), v, ld, targets, vocab_start, lse, dlosses, static_cast<D*>(dlogits),
          ld_dlogits);
    });
  });
}

void launch_argmax(const void* x, DType dtype, std::int64_t n, std::int64_t v, std::int64_t ld, std::int32_t* out,
                   cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    argmax_kernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(static_cast<const T*>(x), v, ld, out);
  });
}

}  // namespace bignlp::kernels
