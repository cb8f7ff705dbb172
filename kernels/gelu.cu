// GeLU forward and backward, both forms (formulas in src/ops/cpu/gelu.cpp): one pass over memory,
// 16-byte vectors when the pointers allow, fp32 math.
#include "kernels/common.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kThreads = 256;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCoeff = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ __forceinline__ float gelu(float x, int approx) {
  if (approx == 0) return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kCoeff * x * x * x)));
  return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
}

__device__ __forceinline__ float gelu_grad(float x, int approx) {
  if (approx == 0) {
    const float t = tanhf(kSqrt2OverPi * (x + kCoeff * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kCoeff * x * x);
  }
  return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * expf(-0.5f * x * x) * kInvSqrt2Pi;
}

template <typename T, int N>
__global__ void gelu_forward_kernel(const T* x, T* y, std::int64_t n, int approx) {
  const std::int64_t vecs = n / N, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t tid = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (std::int64_t i = tid; i < vecs; i += stride) {
    Vec<T, N> v = reinterpret_cast<const Vec<T, N>*>(x)[i];
#pragma unroll
    for (int k = 0; k < N; ++k) v.v[k] = from_float<T>(gelu(to_float(v.v[k]), approx));
    reinterpret_cast<Vec<T, N>*>(y)[i] = v;
  }
  for (std::int64_t i = vecs * N + tid; i < n; i += stride) y[i] = from_float<T>(gelu(to_float(x[i]), approx));
}

template <typename T, int N>
__global__ void gelu_backward_kernel(const T* x, const T* dy, T* dx, std::int64_t n, int approx) {
  const std::int64_t vecs = n / N, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t tid = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (std::int64_t i = tid; i < vecs; i += stride) {
    const Vec<T, N> vx = reinterpret_cast<const Vec<T, N>*>(x)[i];
    Vec<T, N> vg = reinterpret_cast<const Vec<T, N>*>(dy)[i];
#pragma unroll
    for (int k = 0; k < N; ++k) vg.v[k] = from_float<T>(gelu_grad(to_float(vx.v[k]), approx) * to_float(vg.v[k]));
    reinterpret_cast<Vec<T, N>*>(dx)[i] = vg;
  }
  for (std::int64_t i = vecs * N + tid; i < n; i += stride)
    dx[i] = from_float<T>(gelu_grad(to_float(x[i]), approx) * to_float(dy[i]));
}

}  // namespace

void launch_gelu_forward(const void* x, void* y, DType dtype, std::int64_t n, int approx, cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    if (aligned_to(x, 16) && aligned_to(y, 16))
      gelu_forward_kernel<T, kVec><<<grid_for(n / kVec + 1, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), n, approx);
    else
      gelu_forward_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<const T*>(x),
                                                                                static_cast<T*>(y), n, approx);
  });
}

void launch_gelu_backward(const void* x, const void* dy, void* dx, DType dtype, std::int64_t n, int approx,
                          cudaStream_t stream) {
  if (n <= 0) return;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    if (aligned_to(x, 16) && aligned_to(dy, 16) && aligned_to(dx, 16))
      gelu_backward_kernel<T, kVec><<<grid_for(n / kVec + 1, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n, approx);
    else
      gelu_backward_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n, approx);
  });
}

}  // namespace bignlp::kernels
