// Dropout with the counter-based Philox stream of bignlp/ops/philox.h: the same function the CPU
// reference calls decides every element, so masks match bit for bit on any device and launch shape.
//
// A thread owns one Philox block g: global indices 4g..4g+3 (local element i = global - first_index).
// When first_index is a multiple of 4 and the pointers allow, the four elements move as one vector.
#include "bignlp/ops/philox.h"
#include "kernels/common.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kThreads = 256;

template <typename T, bool kVector>
__global__ void dropout_forward_kernel(const T* x, const T* residual, T* y, std::int64_t n, DropoutArgs a,
                                       float keep_scale) {
  const std::uint64_t first = a.first_index;
  const std::uint64_t g0 = first >> 2, g1 = (first + static_cast<std::uint64_t>(n) + 3) >> 2;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t g = g0 + blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; g < g1; g += stride) {
    float u[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    if (a.p > 0.0f) philox_uniform4(a.seed, a.offset, g, u);
    const std::int64_t base = static_cast<std::int64_t>(4 * g - first);  // local index of word 0 (first % 4 == 0 when kVector)
    if (kVector && base + 4 <= n) {
      Vec<T, 4> vx = reinterpret_cast<const Vec<T, 4>*>(x + base)[0];
      Vec<T, 4> vr;
      if (residual != nullptr) vr = reinterpret_cast<const Vec<T, 4>*>(residual + base)[0];
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        float v = to_float(vx.v[w]);
        if (a.p > 0.0f) v = u[w] >= a.p ? v * keep_scale : 0.0f;
        if (residual != nullptr) v += to_float(vr.v[w]);
        vx.v[w] = from_float<T>(v);
      }
      reinterpret_cast<Vec<T, 4>*>(y + base)[0] = vx;
      continue;
    }
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const std::uint64_t global = 4 * g + w;
      if (global < first || global >= first + static_cast<std::uint64_t>(n)) continue;
      const std::int64_t i = static_cast<std::int64_t>(global - first);
      float v = to_float(x[i]);
      if (a.p > 0.0f) v = u[w] >= a.p ? v * keep_scale : 0.0f;
      if (residual != nullptr) v += to_float(residual[i]);
      y[i] = from_float<T>(v);
    }
  }
}

template <typename T, bool kVector>
__global__ void dropout_backward_kernel(const T* dy, T* dx, std::int64_t n, DropoutArgs a, float keep_scale,
                                        bool accumulate) {
  const std::uint64_t first = a.first_index;
  const std::uint64_t g0 = first >> 2, g1 = (first + static_cast<std::uint64_t>(n) + 3) >> 2;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t g = g0 + blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; g < g1; g += stride) {
    float u[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    if (a.p > 0.0f) philox_uniform4(a.seed, a.offset, g, u);
    const std::int64_t base = static_cast<std::int64_t>(4 * g - first);
    if (kVector && base + 4 <= n) {
      Vec<T, 4> vg = reinterpret_cast<const Vec<T, 4>*>(dy + base)[0];
      Vec<T, 4> vd;
      if (accumulate) vd = reinterpret_cast<const Vec<T, 4>*>(dx + base)[0];
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        float v = to_float(vg.v[w]);
        if (a.p > 0.0f) v = u[w] >= a.p ? v * keep_scale : 0.0f;
        if (accumulate) v += to_float(vd.v[w]);
        vg.v[w] = from_float<T>(v);
      }
      reinterpret_cast<Vec<T, 4>*>(dx + base)[0] = vg;
      continue;
    }
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const std::uint64_t global = 4 * g + w;
      if (global < first || global >= first + static_cast<std::uint64_t>(n)) continue;
      const std::int64_t i = static_cast<std::int64_t>(global - first);
      float v = to_float(dy[i]);
      if (a.p > 0.0f) v = u[w] >= a.p ? v * keep_scale : 0.0f;
      if (accumulate) v += to_float(dx[i]);
      dx[i] = from_float<T>(v);
    }
  }
}

unsigned dropout_grid(std::int64_t n, std::uint64_t first) {
  const std::uint64_t groups = ((first + static_cast<std::uint64_t>(n) + 3) >> 2) - (first >> 2);
  return grid_for(static_cast<std::int64_t>(groups), kThreads);
}

}  // namespace

void launch_dropout_forward(const void* x, const void* residual, void* y, DType dtype, std::int64_t n,
                            const DropoutArgs& args, cudaStream_t stream) {
  if (n <= 0) return;
  const float keep_scale = 1.0f / (1.0f - args.p);
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::size_t vb = 4 * sizeof(T);
    const bool vec = args.first_index % 4 == 0 && aligned_to(x, vb) && aligned_to(y, vb) &&
                     (residual == nullptr || aligned_to(residual, vb));
    const unsigned grid = dropout_grid(n, args.first_index);
    if (vec)
      dropout_forward_kernel<T, true><<<grid, kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(residual), static_cast<T*>(y), n, args, keep_scale);
    else
      dropout_forward_kernel<T, false><<<grid, kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(residual), static_cast<T*>(y), n, args, keep_scale);
  });
}

void launch_dropout_backward(const void* dy, void* dx, DType dtype, std::int64_t n, const DropoutArgs& args,
                             bool accumulate, cudaStream_t stream) {
  if (n <= 0) return;
  const float keep_scale = 1.0f / (1.0f - args.p);
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::size_t vb = 4 * sizeof(T);
    const bool vec = args.first_index % 4 == 0 && aligned_to(dy, vb) && aligned_to(dx, vb);
    const unsigned grid = dropout_grid(n, args.first_index);
    if (vec)
      dropout_backward_kernel<T, true><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(dy), static_cast<T*>(dx),
                                                                      n, args, keep_scale, accumulate);
    else
      dropout_backward_kernel<T, false><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(dy), static_cast<T*>(dx),
                                                                       n, args, keep_scale, accumulate);
  });
}

}  // namespace bignlp::kernels
