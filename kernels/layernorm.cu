// LayerNorm forward and backward.
//
// Forward: one warp per row; the row is read three times (mean, variance about the mean, output),
// the second and third reads hitting L1/L2. Two-pass variance, as the CPU reference.
// Backward: one block per chunk of kRows rows. Phase 1 writes this chunk's column partial sums of
// dy * xhat and dy (for dweight, dbias) to the workspace; phase 2 (after a barrier, because dx may
// alias dy) computes each row's dx with one warp per row. A second kernel adds the partials of all
// chunks in chunk order into dweight and dbias: deterministic, no atomics.
// A null bias (dbias) is a LayerNorm without bias: + 0 (the dbias partials are not reduced).
#include "kernels/common.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr std::int64_t kRows = 32;

template <typename T, int N>
__global__ void layernorm_forward_kernel(const T* x, const T* weight, const T* bias, T* y, float* mean, float* rstd,
                                         std::int64_t n, std::int64_t c, float eps) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kWarps) + threadIdx.x / 32;
  if (row >= n) return;
  const int lane = threadIdx.x & 31;
  const T* xr = x + row * c;
  float s = 0.0f;
  for (std::int64_t j = lane * N; j < c; j += 32 * N) {
    const Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(xr + j);
#pragma unroll
    for (int k = 0; k < N; ++k) s += to_float(v.v[k]);
  }
  const float mu = warp_sum(s) / static_cast<float>(c);
  float var = 0.0f;
  for (std::int64_t j = lane * N; j < c; j += 32 * N) {
    const Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(xr + j);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const float d = to_float(v.v[k]) - mu;
      var += d * d;
    }
  }
  var = warp_sum(var) / static_cast<float>(c);
  const float rs = 1.0f / sqrtf(var + eps);
  T* yr = y + row * c;
  for (std::int64_t j = lane * N; j < c; j += 32 * N) {
    const Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(xr + j);
    const Vec<T, N> w = *reinterpret_cast<const Vec<T, N>*>(weight + j);
    Vec<T, N> o;
    if (bias != nullptr) {
      const Vec<T, N> b = *reinterpret_cast<const Vec<T, N>*>(bias + j);
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] = from_float<T>((to_float(v.v[k]) - mu) * rs * to_float(w.v[k]) + to_float(b.v[k]));
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] = from_float<T>((to_float(v.v[k]) - mu) * rs * to_float(w.v[k]));
    }
    *reinterpret_cast<Vec<T, N>*>(yr + j) = o;
  }
  if (lane == 0) {
    if (mean != nullptr) mean[row] = mu;
    if (rstd != nullptr) rstd[row] = rs;
  }
}

template <typename T, int N>
__global__ void layernorm_backward_kernel(const T* x, const T* weight, const float* mean, const float* rstd,
                                          const T* dy, T* dx, std::int64_t n, std::int64_t c, bool accumulate_dx,
                                          float* partial_w, float* partial_b) {
  const std::int64_t r0 = blockIdx.x * kRows;
  const std::int64_t r1 = min(n, r0 + kRows);
  // Phase 1: column partials of this chunk (reads dy before any dx of the chunk is written).
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    float aw = 0.0f, ab = 0.0f;
    for (std::int64_t r = r0; r < r1; ++r) {
      const float g = to_float(dy[r * c + j]);
      aw += g * (to_float(x[r * c + j]) - mean[r]) * rstd[r];
      ab += g;
    }
    partial_w[blockIdx.x * c + j] = aw;
    partial_b[blockIdx.x * c + j] = ab;
  }
  __syncthreads();
  // Phase 2: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, one warp per row.
  const int lane = threadIdx.x & 31;
  for (std::int64_t r = r0 + threadIdx.x / 32; r < r1; r += kWarps) {
    const float mu = mean[r], rs = rstd[r];
    float sg = 0.0f, sgx = 0.0f;
    for (std::int64_t j = lane * N; j < c; j += 32 * N) {
      const Vec<T, N> vg = *reinterpret_cast<const Vec<T, N>*>(dy + r * c + j);
      const Vec<T, N> vx = *reinterpret_cast<const Vec<T, N>*>(x + r * c + j);
      const Vec<T, N> vw = *reinterpret_cast<const Vec<T, N>*>(weight + j);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float g = to_float(vg.v[k]) * to_float(vw.v[k]);
        sg += g;
        sgx += g * (to_float(vx.v[k]) - mu) * rs;
      }
    }
    const float mean_g = warp_sum(sg) / static_cast<float>(c);
    const float mean_gx = warp_sum(sgx) / static_cast<float>(c);
    for (std::int64_t j = lane * N; j < c; j += 32 * N) {
      const Vec<T, N> vg = *reinterpret_cast<const Vec<T, N>*>(dy + r * c + j);
      const Vec<T, N> vx = *reinterpret_cast<const Vec<T, N>*>(x + r * c + j);
      const Vec<T, N> vw = *reinterpret_cast<const Vec<T, N>*>(weight + j);
      Vec<T, N> vd;
      if (accumulate_dx) vd = *reinterpret_cast<const Vec<T, N>*>(dx + r * c + j);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float g = to_float(vg.v[k]) * to_float(vw.v[k]);
        const float xhat = (to_float(vx.v[k]) - mu) * rs;
        float v = rs * (g - mean_g - xhat * mean_gx);
        if (accumulate_dx) v += to_float(vd.v[k]);
        vd.v[k] = from_float<T>(v);
      }
      *reinterpret_cast<Vec<T, N>*>(dx + r * c + j) = vd;
    }
  }
}

template <typename T>
int vector_width(std::int64_t c, std::initializer_list<const void*> ptrs) {
  constexpr int kVec = 16 / sizeof(T);
  if (c % kVec != 0) return 1;
  for (const void* p : ptrs)
    if (p != nullptr && !aligned_to(p, 16)) return 1;
  return kVec;
}

}  // namespace

void launch_layernorm_forward(const void* x, const void* weight, const void* bias, void* y, float* mean, float* rstd,
                              DType dtype, std::int64_t n, std::int64_t c, float eps, cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  const unsigned grid = static_cast<unsigned>(ceil_div(n, kWarps));
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    const auto* xp = static_cast<const T*>(x);
    const auto* wp = static_cast<const T*>(weight);
    const auto* bp = static_cast<const T*>(bias);
    auto* yp = static_cast<T*>(y);
    if (vector_width<T>(c, {x, weight, bias, y}) == kVec)
      layernorm_forward_kernel<T, kVec><<<grid, kThreads, 0, stream>>>(xp, wp, bp, yp, mean, rstd, n, c, eps);
    else
      layernorm_forward_kernel<T, 1><<<grid, kThreads, 0, stream>>>(xp, wp, bp, yp, mean, rstd, n, c, eps);
  });
}

std::size_t layernorm_backward_workspace_bytes(std::int64_t n, std::int64_t c) {
  return 2 * static_cast<std::size_t>(ceil_div(n, kRows) * c) * sizeof(float);
}

void launch_layernorm_backward(const void* x, const void* weight, const float* mean, const float* rstd,
                               const void* dy, void* dx, float* dweight, float* dbias, DType dtype, std::int64_t n,
                               std::int64_t c, bool accumulate_dx, void* workspace, cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  const std::int64_t chunks = ceil_div(n, kRows);
  float* partial_w = static_cast<float*>(workspace);
  float* partial_b = partial_w + chunks * c;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    const auto* xp = static_cast<const T*>(x);
    const auto* wp = static_cast<const T*>(weight);
    const auto* gp = static_cast<const T*>(dy);
    auto* dxp = static_cast<T*>(dx);
    if (vector_width<T>(c, {x, weight, dy, dx}) == kVec)
      layernorm_backward_kernel<T, kVec><<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(
          xp, wp, mean, rstd, gp, dxp, n, c, accumulate_dx, partial_w, partial_b);
    else
      layernorm_backward_kernel<T, 1><<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(
          xp, wp, mean, rstd, gp, dxp, n, c, accumulate_dx, partial_w, partial_b);
  });
  launch_reduce_partials(partial_w, chunks, c, dweight, stream);
  if (dbias != nullptr) launch_reduce_partials(partial_b, chunks, c, dbias, stream);
}

}  // namespace bignlp::kernels
