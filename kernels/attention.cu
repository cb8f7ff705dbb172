// Attention entry points: the tensor-core flash kernels (attention.cuh, instantiated in instances/)
// for bf16/fp16 with head size 64 or 128, and generic kernels for every other case (fp32, other
// head sizes, unaligned pointers): one warp per query row (forward, dQ) or key row (dK, dV) with
// scalar fp32 math, online softmax, and no atomics. Both compute exactly the function of the CPU
// reference (src/ops/cpu/attention.cpp), including its Philox dropout indices.
#include <string>

#include "bignlp/core/error.h"
#include "kernels/attention.cuh"

namespace bignlp::kernels {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kMaxPerLane = 8;  // generic kernels: head size <= 256

struct Geometry {
  std::int64_t qkv_row, out_row;  // elements between consecutive tokens t of one sequence
  int hs;
};

template <typename T>
__device__ __forceinline__ const T* qkv_at(const T* qkv, const AttentionArgs& a, const Geometry& g, int t, int b,
                                           int h, int part) {
  return qkv + static_cast<std::int64_t>(t) * g.qkv_row + (static_cast<std::int64_t>(b) * a.nh + h) * 3 * g.hs +
         part * g.hs;
}

template <typename T>
__device__ __forceinline__ const T* out_at(const T* out, const AttentionArgs& a, const Geometry& g, int t, int b,
                                           int h) {
  return out + static_cast<std::int64_t>(t) * g.out_row + (static_cast<std::int64_t>(b) * a.nh + h) * g.hs;
}

__device__ __forceinline__ float drop(const AttentionArgs& a, int b, int h, int i, int j, float keep_scale) {
  if (a.dropout_p <= 0.0f) return 1.0f;
  const std::uint64_t head = static_cast<std::uint64_t>(b) * a.total_heads + a.head_offset + h;
  return flash::dropout_factor(head, a.t, i, j, a.dropout_p, keep_scale, a.seed, a.offset);
}

template <typename T>
__global__ void generic_forward_kernel(const T* qkv, T* out, float* lse, AttentionArgs a, Geometry geo,
                                       float keep_scale) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  if (row >= static_cast<std::int64_t>(a.b) * a.nh * a.t) return;
  const int lane = threadIdx.x & 31;
  const int i = static_cast<int>(row % a.t);
  const int bh = static_cast<int>(row / a.t), b = bh / a.nh, h = bh % a.nh;
  float q[kMaxPerLane], o[kMaxPerLane];
  const T* qp = qkv_at(qkv, a, geo, i, b, h, 0);
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    q[k] = d < geo.hs ? to_float(qp[d]) : 0.0f;
    o[k] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const int jend = a.causal ? i + 1 : a.t;
  for (int j = 0; j < jend; ++j) {
    const T* kp = qkv_at(qkv, a, geo, j, b, h, 1);
    const T* vp = qkv_at(qkv, a, geo, j, b, h, 2);
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + 32 * k;
      if (d < geo.hs) s += q[k] * to_float(kp[d]);
    }
    s = warp_sum(s) * a.scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);
    const float pr = expf(s - m_new);
    l = l * corr + pr;
    const float pd = pr * drop(a, b, h, i, j, keep_scale);
#pragma unroll
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + 32 * k;
      o[k] = o[k] * corr + (d < geo.hs ? pd * to_float(vp[d]) : 0.0f);
    }
    m = m_new;
  }
  T* op = const_cast<T*>(out_at(out, a, geo, i, b, h));
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    if (d < geo.hs) op[d] = from_float<T>(o[k] / l);
  }
  if (lane == 0) lse[static_cast<std::int64_t>(bh) * a.t + i] = m + logf(l);
}

// D = rowsum(dO * O) per (b, h, i); zeroes the fp32 dQ accumulators of the flash path.
template <typename T>
__global__ void attention_delta_kernel(const T* out, const T* dout, float* delta, float* dq_accum, AttentionArgs a,
                                       Geometry geo) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  if (row >= static_cast<std::int64_t>(a.b) * a.nh * a.t) return;
  const int lane = threadIdx.x & 31;
  const int i = static_cast<int>(row % a.t);
  const int bh = static_cast<int>(row / a.t), b = bh / a.nh, h = bh % a.nh;
  const T* op = out_at(out, a, geo, i, b, h);
  const T* gp = out_at(dout, a, geo, i, b, h);
  float s = 0.0f;
  for (int d = lane; d < geo.hs; d += 32) s += to_float(op[d]) * to_float(gp[d]);
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
  if (dq_accum != nullptr)
    for (int d = lane; d < geo.hs; d += 32) dq_accum[row * geo.hs + d] = 0.0f;
}

template <typename T>
__global__ void dq_convert_kernel(const float* dq_accum, T* dqkv, AttentionArgs a, Geometry geo) {
  const std::int64_t total = static_cast<std::int64_t>(a.b) * a.nh * a.t * geo.hs;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int d = static_cast<int>(idx % geo.hs);
    const std::int64_t row = idx / geo.hs;
    const int i = static_cast<int>(row % a.t);
    const int bh = static_cast<int>(row / a.t), b = bh / a.nh, h = bh % a.nh;
    T* dst = const_cast<T*>(qkv_at(static_cast<const T*>(dqkv), a, geo, i, b, h, 0));
    dst[d] = from_float<T>(dq_accum[idx]);
  }
}

// dK, dV of one key row j per warp: sums over the queries that see it.
template <typename T>
__global__ void generic_backward_kv_kernel(const T* qkv, const T* dout, const float* lse, const float* delta, T* dqkv,
                                           AttentionArgs a, Geometry geo, float keep_scale) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  if (row >= static_cast<std::int64_t>(a.b) * a.nh * a.t) return;
  const int lane = threadIdx.x & 31;
  const int j = static_cast<int>(row % a.t);
  const int bh = static_cast<int>(row / a.t), b = bh / a.nh, h = bh % a.nh;
  float kr[kMaxPerLane], vr[kMaxPerLane], dk[kMaxPerLane], dv[kMaxPerLane];
  const T* kp = qkv_at(qkv, a, geo, j, b, h, 1);
  const T* vp = qkv_at(qkv, a, geo, j, b, h, 2);
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    kr[k] = d < geo.hs ? to_float(kp[d]) : 0.0f;
    vr[k] = d < geo.hs ? to_float(vp[d]) : 0.0f;
    dk[k] = dv[k] = 0.0f;
  }
  for (int i = a.causal ? j : 0; i < a.t; ++i) {
    const T* qp = qkv_at(qkv, a, geo, i, b, h, 0);
    const T* gp = out_at(dout, a, geo, i, b, h);
    float s = 0.0f, dp = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + 32 * k;
      if (d < geo.hs) {
        s += to_float(qp[d]) * kr[k];
        dp += to_float(gp[d]) * vr[k];
      }
    }
    s = warp_sum(s) * a.scale;
    dp = warp_sum(dp);
    const std::int64_t stat = static_cast<std::int64_t>(bh) * a.t + i;
    const float pr = expf(s - lse[stat]);
    const float dj = drop(a, b, h, i, j, keep_scale);
    const float ds = pr * (dj * dp - delta[stat]) * a.scale;
    const float pd = pr * dj;
#pragma unroll
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + 32 * k;
      if (d < geo.hs) {
        dv[k] += pd * to_float(gp[d]);
        dk[k] += ds * to_float(qp[d]);
      }
    }
  }
  T* dst = const_cast<T*>(qkv_at(static_cast<const T*>(dqkv), a, geo, j, b, h, 1));
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    if (d < geo.hs) {
      dst[d] = from_float<T>(dk[k]);
      dst[geo.hs + d] = from_float<T>(dv[k]);
    }
  }
}

// dQ of one query row i per warp.
template <typename T>
__global__ void generic_backward_q_kernel(const T* qkv, const T* dout, const float* lse, const float* delta, T* dqkv,
                                          AttentionArgs a, Geometry geo, float keep_scale) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  if (row >= static_cast<std::int64_t>(a.b) * a.nh * a.t) return;
  const int lane = threadIdx.x & 31;
  const int i = static_cast<int>(row % a.t);
  const int bh = static_cast<int>(row / a.t), b = bh / a.nh, h = bh % a.nh;
  float q[kMaxPerLane], g[kMaxPerLane], dq[kMaxPerLane];
  const T* qp = qkv_at(qkv, a, geo, i, b, h, 0);
  const T* gp = out_at(dout, a, geo, i, b, h);
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    q[k] = d < geo.hs ? to_float(qp[d]) : 0.0f;
    g[k] = d < geo.hs ? to_float(gp[d]) : 0.0f;
    dq[k] = 0.0f;
  }
  const float l = lse[row], dd = delta[row];
  const int jend = a.causal ? i + 1 : a.t;
  for (int j = 0; j < jend; ++j) {
    const T* kp = qkv_at(qkv, a, geo, j, b, h, 1);
    const T* vp = qkv_at(qkv, a, geo, j, b, h, 2);
    float s = 0.0f, dp = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + 32 * k;
      if (d < geo.hs) {
        s += q[k] * to_float(kp[d]);
        dp += g[k] * to_float(vp[d]);
      }
    }
    s = warp_sum(s) * a.scale;
    dp = warp_sum(dp);
    const float pr = expf(s - l);
    const float ds = pr * (drop(a, b, h, i, j, keep_scale) * dp - dd) * a.scale;
#pragma unroll
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + 32 * k;
      if (d < geo.hs) dq[k] += ds * to_float(kp[d]);
    }
  }
  T* dst = const_cast<T*>(qkv_at(static_cast<const T*>(dqkv), a, geo, i, b, h, 0));
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    if (d < geo.hs) dst[d] = from_float<T>(dq[k]);
  }
}

Geometry geometry(const AttentionArgs& a) {
  return Geometry{static_cast<std::int64_t>(a.b) * a.nh * 3 * a.hs, static_cast<std::int64_t>(a.b) * a.nh * a.hs, a.hs};
}

unsigned row_blocks(const AttentionArgs& a) {
  return static_cast<unsigned>(ceil_div(static_cast<std::int64_t>(a.b) * a.nh * a.t, kWarpsPerBlock));
}

void check_args(const AttentionArgs& a) {
  if (a.hs > 32 * kMaxPerLane)
    throw RuntimeError("attention: head size " + std::to_string(a.hs) + " exceeds the kernels' limit of " +
                       std::to_string(32 * kMaxPerLane));
  if (static_cast<std::int64_t>(a.b) * a.nh > 65535)
    throw RuntimeError("attention: B * NH = " + std::to_string(static_cast<std::int64_t>(a.b) * a.nh) +
                       " exceeds the grid limit 65535");
}

std::size_t align_up(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

template <typename T>
void flash_forward(int hs, const flash::FwdParams& p, cudaStream_t stream) {
  if (hs == 64) flash::launch_forward<T, 64>(p, stream);
  else flash::launch_forward<T, 128>(p, stream);
}

template <typename T>
void flash_backward(int hs, const flash::BwdParams& p, cudaStream_t stream) {
  if (hs == 64) flash::launch_backward<T, 64>(p, stream);
  else flash::launch_backward<T, 128>(p, stream);
}

}  // namespace

bool attention_fast_path(DType dtype, int hs, const void* qkv, const void* out) {
  return (dtype == DType::kBF16 || dtype == DType::kF16) && (hs == 64 || hs == 128) && aligned_to(qkv, 16) &&
         aligned_to(out, 16);
}

void launch_attention_forward(const void* qkv, void* out, float* lse, DType dtype, const AttentionArgs& a,
                              cudaStream_t stream) {
  if (a.t <= 0 || a.b <= 0 || a.nh <= 0) return;
  check_args(a);
  const float keep_scale = 1.0f / (1.0f - a.dropout_p);
  if (attention_fast_path(dtype, a.hs, qkv, out)) {
    flash::FwdParams p{qkv,        out,          lse,    a.t,         a.b,    a.nh,          a.scale * flash::kLog2e,
                       a.causal,   a.dropout_p,  keep_scale, a.seed,  a.offset, a.total_heads, a.head_offset};
    if (dtype == DType::kBF16) flash_forward<__nv_bfloat16>(a.hs, p, stream);
    else flash_forward<__half>(a.hs, p, stream);
    return;
  }
  const Geometry geo = geometry(a);
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    generic_forward_kernel<T><<<row_blocks(a), kWarpsPerBlock * 32, 0, stream>>>(
        static_cast<const T*>(qkv), static_cast<T*>(out), lse, a, geo, keep_scale);
  });
}

std::size_t attention_backward_workspace_bytes(const AttentionArgs& a) {
  const std::size_t rows = static_cast<std::size_t>(a.b) * a.nh * a.t;
  return align_up(rows * sizeof(float)) + align_up(rows * a.hs * sizeof(float));
}

void launch_attention_backward(const void* qkv, const void* out, const float* lse, const void* dout, void* dqkv,
                               DType dtype, const AttentionArgs& a, void* workspace, std::size_t workspace_bytes,
                               cudaStream_t stream) {
  if (a.t <= 0 || a.b <= 0 || a.nh <= 0) return;
  check_args(a);
  if (workspace_bytes < attention_backward_workspace_bytes(a))
    throw RuntimeError("launch_attention_backward: workspace too small");
  const std::size_t rows = static_cast<std::size_t>(a.b) * a.nh * a.t;
  float* delta = static_cast<float*>(workspace);
  float* dq_accum = reinterpret_cast<float*>(static_cast<char*>(workspace) + align_up(rows * sizeof(float)));
  const float keep_scale = 1.0f / (1.0f - a.dropout_p);
  const Geometry geo = geometry(a);
  const bool fast = attention_fast_path(dtype, a.hs, qkv, out) && aligned_to(dout, 16) && aligned_to(dqkv, 16);
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    attention_delta_kernel<T><<<row_blocks(a), kWarpsPerBlock * 32, 0, stream>>>(
        static_cast<const T*>(out), static_cast<const T*>(dout), delta, fast ? dq_accum : nullptr, a, geo);
    if (!fast) {
      generic_backward_kv_kernel<T><<<row_blocks(a), kWarpsPerBlock * 32, 0, stream>>>(
          static_cast<const T*>(qkv), static_cast<const T*>(dout), lse, delta, static_cast<T*>(dqkv), a, geo,
          keep_scale);
      generic_backward_q_kernel<T><<<row_blocks(a), kWarpsPerBlock * 32, 0, stream>>>(
          static_cast<const T*>(qkv), static_cast<const T*>(dout), lse, delta, static_cast<T*>(dqkv), a, geo,
          keep_scale);
    }
  });
  if (!fast) return;
  flash::BwdParams p{qkv,      dout,    lse,         delta,      dq_accum, dqkv,   a.t,      a.b,
                     a.nh,     a.scale, a.scale * flash::kLog2e,  a.causal, a.dropout_p, keep_scale, a.seed,
                     a.offset, a.total_heads, a.head_offset};
  if (dtype == DType::kBF16) {
    flash_backward<__nv_bfloat16>(a.hs, p, stream);
    dq_convert_kernel<__nv_bfloat16><<<grid_for(static_cast<std::int64_t>(rows) * a.hs, 256), 256, 0, stream>>>(
        dq_accum, static_cast<__nv_bfloat16*>(dqkv), a, geo);
  } else {
    flash_backward<__half>(a.hs, p, stream);
    dq_convert_kernel<__half><<<grid_for(static_cast<std::int64_t>(rows) * a.hs, 256), 256, 0, stream>>>(
        dq_accum, static_cast<__half*>(dqkv), a, geo);
  }
}

}  // namespace bignlp::kernels
