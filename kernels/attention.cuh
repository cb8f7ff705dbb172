// Flash attention (FlashAttention-2 formulation) on tensor cores, over Megatron's head-interleaved
// QKV. Templates only; kernels/instances/ instantiates them per (dtype, head size) and
// kernels/attention.cu chooses between them and the generic kernels.
//
// Layout: qkv (T, B, NH*3*HS): token t of sequence b, head h, part p (0 q, 1 k, 2 v) starts at
// ((t*B + b)*NH*3 + h*3 + p)*HS. out (T, B, NH*HS), lse (B, NH, T) fp32 (natural log), dropout
// element (b, h, i, j) has Philox index ((b*total_heads + head_offset + h)*T + i)*T + j.
//
// Tensor-core mapping: mma.sync m16n8k16 (bf16/fp16 in, fp32 accumulate), fragments loaded from
// shared memory with ldmatrix (plain for operands whose reduction dimension is contiguous in a smem
// row, .trans otherwise). Shared-memory tiles are rows of HS elements split into 16-byte chunks;
// chunk c of row r is stored at chunk c ^ (r & 7), so the 8 row addresses of one ldmatrix phase
// fall into 8 distinct bank groups (no conflicts for 128- and 256-byte rows).
//
// Forward, per CTA of 4 warps: kBlockM query rows of one (b, h); warp w owns kMTiles m16 tiles.
// Key/value tiles of kBlockN rows are double-buffered with cp.async. Scores are kept in log2 units
// (x = s * scale * log2 e) with a running row max m and row sum l; lse = ln 2 * (m + log2 l).
// Backward, per CTA of 4 warps: 64 keys of one (b, h), warp w owns keys 16w..16w+15, looping over
// query tiles of 64: S^T = K Q^T, dP^T = V dO^T, P^T = exp2(x - lse), dS^T = P^T (dP^T d - D) with
// D = rowsum(dO * O) precomputed; dV += (P^T d) dO, dK += scale dS^T Q in registers; scale dS goes
// through shared memory so each warp can add its 16 query rows of dQ = dS K to fp32 accumulators in
// global memory with atomics (summed over key tiles; the only order-dependent sum of the op).
// Rows past T are zero-filled on load and masked (-inf / zero probability), never stored.
#pragma once

#include <cstdint>

#include "bignlp/ops/philox.h"
#include "kernels/common.cuh"
#include "kernels/flash_layout.h"

namespace bignlp::kernels::flash {

struct FwdParams {
  const void* qkv;
  void* out;
  float* lse;
  int t, b, nh;
  float scale_log2;  // softmax scale * log2(e)
  bool causal;
  float dropout_p;
  float keep_scale;  // 1 / (1 - p)
  std::uint64_t seed, offset;
  int total_heads, head_offset;
};

struct BwdParams {
  const void* qkv;
  const void* dout;
  const float* lse;
  const float* delta;  // (B, NH, T): D = rowsum(dO * O)
  float* dq_accum;     // (B, NH, T, HS) fp32, zeroed before the launch
  void* dqkv;
  int t, b, nh;
  float scale;       // softmax scale
  float scale_log2;  // scale * log2(e)
  bool causal;
  float dropout_p;
  float keep_scale;
  std::uint64_t seed, offset;
  int total_heads, head_offset;
};

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// ---- PTX wrappers -------------------------------------------------------------------------------

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

/// 16-byte global -> shared copy; zero-fills the destination when !valid (nothing is read).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem), "r"(src_size));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
}

/// d (16x8 fp32) += a (16x16, row) * b (16x8, col).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                          std::uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

/// Two floats as one register of two 16-bit values (lo in the low half).
template <typename T>
__device__ __forceinline__ std::uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&v);
  }
}

/// cp.async of rows [row0, row0 + kRows) of part `part` of (b, h) into a swizzled tile.
template <typename T, int HS, int kRows>
__device__ __forceinline__ void load_tile(T* tile, const T* base, std::int64_t row_stride, int row0, int t_len) {
  constexpr int kChunks = HS / 8;
  for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int t = row0 + r;
    const bool valid = t < t_len;
    const T* src = valid ? base + static_cast<std::int64_t>(t) * row_stride + c * 8 : base;
    cp_async16(tile + swizzle<HS>(r, c), src, valid);
  }
}

// ---- forward ------------------------------------------------------------------------------------

template <int HS>
struct FwdConfig {
  static constexpr int kMTiles = 2;                  // m16 tiles per warp
  static constexpr int kBlockM = kWarps * 16 * kMTiles;  // 128 query rows per CTA
  static constexpr int kBlockN = HS <= 64 ? 64 : 32;     // keys per tile
  static constexpr int kSmemBytes = (kBlockM + 4 * kBlockN) * HS * 2;
};

template <typename T, int HS, bool kDropout>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(FwdParams p) {
  using Cfg = FwdConfig<HS>;
  constexpr int kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN, kMTiles = Cfg::kMTiles;
  constexpr int kNT = kBlockN / 8;  // n8 tiles of scores per m-tile
  constexpr int kDT = HS / 8;       // n8 tiles of the output per m-tile
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBlockM * HS;  // two stages
  T* sV = sK + 2 * kBlockN * HS;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int q_block = p.causal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
  const int q0 = q_block * kBlockM;
  const int bh = blockIdx.y, b = bh / p.nh, h = bh % p.nh;
  const std::int64_t qkv_row = static_cast<std::int64_t>(p.b) * p.nh * 3 * HS;
  const T* qkv = static_cast<const T*>(p.qkv);
  const T* q_base = qkv + static_cast<std::int64_t>(b) * p.nh * 3 * HS + static_cast<std::int64_t>(h) * 3 * HS;
  const T* k_base = q_base + HS;
  const T* v_base = q_base + 2 * HS;
  const std::uint64_t head = static_cast<std::uint64_t>(b) * p.total_heads + p.head_offset + h;

  const int kv_end = p.causal ? min(p.t, q0 + kBlockM) : p.t;
  const int n_blocks = (kv_end + kBlockN - 1) / kBlockN;

  load_tile<T, HS, kBlockM>(sQ, q_base, qkv_row, q0, p.t);
  load_tile<T, HS, kBlockN>(sK, k_base, qkv_row, 0, p.t);
  load_tile<T, HS, kBlockN>(sV, v_base, qkv_row, 0, p.t);
  cp_async_commit();

  float o[kMTiles][kDT][4];
  float m_run[kMTiles][2], l_run[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.0f;
    m_run[mt][0] = m_run[mt][1] = -INFINITY;
    l_run[mt][0] = l_run[mt][1] = 0.0f;
  }

  for (int kb = 0; kb < n_blocks; ++kb) {
    const int stage = kb & 1;
    if (kb + 1 < n_blocks) {
      load_tile<T, HS, kBlockN>(sK + (stage ^ 1) * kBlockN * HS, k_base, qkv_row, (kb + 1) * kBlockN, p.t);
      load_tile<T, HS, kBlockN>(sV + (stage ^ 1) * kBlockN * HS, v_base, qkv_row, (kb + 1) * kBlockN, p.t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* cK = sK + stage * kBlockN * HS;
    const T* cV = sV + stage * kBlockN * HS;
    const int k0 = kb * kBlockN;

    // S = Q K^T for this warp's rows.
    float s[kMTiles][kNT][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) {
      std::uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        ldmatrix_x4(a[mt], sQ + swizzle<HS>((warp * kMTiles + mt) * 16 + a_row(lane), ks * 2 + a_chunk(lane)));
      }
#pragma unroll
      for (int nt = 0; nt < kNT; nt += 2) {
        std::uint32_t bf[4];
        ldmatrix_x4(bf, cK + swizzle<HS>(nt * 8 + b_row(lane), ks * 2 + b_chunk(lane)));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<T>(s[mt][nt], a[mt], bf[0], bf[1]);
          mma_16816<T>(s[mt][nt + 1], a[mt], bf[2], bf[3]);
        }
      }
    }

    // Masks, online softmax, dropout; P goes straight into A fragments.
    const bool need_mask = (k0 + kBlockN > p.t) || (p.causal && k0 + kBlockN - 1 > q0);
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int qi = q0 + (warp * kMTiles + mt) * 16 + acc_row(lane, half * 2);
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float x = s[mt][nt][half * 2 + e] * p.scale_log2;
            if (need_mask) {
              const int kj = k0 + nt * 8 + acc_col(lane, e);
              if (kj >= p.t || (p.causal && kj > qi)) x = -INFINITY;
            }
            s[mt][nt][half * 2 + e] = x;
            mx = fmaxf(mx, x);
          }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_run[mt][half], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = exp2f(m_run[mt][half] - m_use);  // exp2(-inf) = 0 on the first tile
        m_run[mt][half] = m_new;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float pv = exp2f(s[mt][nt][half * 2 + e] - m_use);
            sum += pv;
            s[mt][nt][half * 2 + e] = pv;
          }
        l_run[mt][half] = l_run[mt][half] * corr + sum;
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt) {
          o[mt][dt][half * 2] *= corr;
          o[mt][dt][half * 2 + 1] *= corr;
        }
        if (kDropout && qi < p.t) {
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) {
            const int kj = k0 + nt * 8 + acc_col(lane, 0);
            float d0, d1;
            dropout_pair(head, p.t, qi, kj, p.dropout_p, p.keep_scale, p.seed, p.offset, d0, d1);
            s[mt][nt][half * 2] *= d0;
            s[mt][nt][half * 2 + 1] *= d1;
          }
        }
      }
    }

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      std::uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const float* acc = s[mt][2 * kk + a_from_acc_tile(r)];
          a[mt][r] = pack2<T>(acc[a_from_acc_elem(r)], acc[a_from_acc_elem(r) + 1]);
        }
#pragma unroll
      for (int dt = 0; dt < kDT; dt += 2) {
        std::uint32_t bf[4];
        ldmatrix_x4_trans(bf, cV + swizzle<HS>(kk * 16 + bt_row(lane), dt + bt_chunk(lane)));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<T>(o[mt][dt], a[mt], bf[0], bf[1]);
          mma_16816<T>(o[mt][dt + 1], a[mt], bf[2], bf[3]);
        }
      }
    }
    __syncthreads();  // the next prefetch overwrites this stage
  }

  // Normalise and store O and lse.
  T* out = static_cast<T*>(p.out);
  const std::int64_t out_row = static_cast<std::int64_t>(p.b) * p.nh * HS;
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float l = l_run[mt][half];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int qi = q0 + (warp * kMTiles + mt) * 16 + acc_row(lane, half * 2);
      if (qi >= p.t) continue;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      T* orow = out + static_cast<std::int64_t>(qi) * out_row + static_cast<std::int64_t>(b) * p.nh * HS +
                static_cast<std::int64_t>(h) * HS;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        const std::uint32_t v = pack2<T>(o[mt][dt][half * 2] * inv, o[mt][dt][half * 2 + 1] * inv);
        *reinterpret_cast<std::uint32_t*>(orow + dt * 8 + acc_col(lane, 0)) = v;
      }
      if ((lane & 3) == 0) p.lse[static_cast<std::int64_t>(bh) * p.t + qi] = (m_run[mt][half] + log2f(l)) * kLn2;
    }
  }
}

// ---- backward -----------------------------------------------------------------------------------

struct BwdConfig {
  static constexpr int kBlockN = kWarps * 16;  // keys per CTA
  static constexpr int kBlockM = 64;           // queries per tile
};

template <int HS>
constexpr int bwd_smem_bytes() {
  // K, V (kBlockN rows), Q, dO (kBlockM rows, two stages each), dS^T (kBlockN x kBlockM), lse, D.
  return (2 * BwdConfig::kBlockN * HS + 4 * BwdConfig::kBlockM * HS + BwdConfig::kBlockN * BwdConfig::kBlockM) * 2 +
         4 * BwdConfig::kBlockM * 4;
}

template <typename T, int HS, bool kDropout>
__global__ void __launch_bounds__(kThreads) flash_backward_kernel(BwdParams p) {
  constexpr int kBlockN = BwdConfig::kBlockN, kBlockM = BwdConfig::kBlockM;
  constexpr int kNT = kBlockM / 8;  // n8 tiles of S^T per warp (queries)
  constexpr int kDT = HS / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + kBlockN * HS;
  T* sQ = sV + kBlockN * HS;         // two stages
  T* sdO = sQ + 2 * kBlockM * HS;    // two stages
  T* sdS = sdO + 2 * kBlockM * HS;   // (kBlockN keys, kBlockM queries), swizzled like a kBlockM-wide tile
  float* sLse = reinterpret_cast<float*>(sdS + kBlockN * kBlockM);  // two stages
  float* sD = sLse + 2 * kBlockM;                                   // two stages

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int k0 = blockIdx.x * kBlockN;
  const int bh = blockIdx.y, b = bh / p.nh, h = bh % p.nh;
  const std::int64_t qkv_row = static_cast<std::int64_t>(p.b) * p.nh * 3 * HS;
  const std::int64_t out_row = static_cast<std::int64_t>(p.b) * p.nh * HS;
  const T* qkv = static_cast<const T*>(p.qkv);
  const std::int64_t head_col = static_cast<std::int64_t>(b) * p.nh * 3 * HS + static_cast<std::int64_t>(h) * 3 * HS;
  const T* q_base = qkv + head_col;
  const T* k_base = q_base + HS;
  const T* v_base = q_base + 2 * HS;
  const T* do_base = static_cast<const T*>(p.dout) + static_cast<std::int64_t>(b) * p.nh * HS +
                     static_cast<std::int64_t>(h) * HS;
  const float* lse_base = p.lse + static_cast<std::int64_t>(bh) * p.t;
  const float* d_base = p.delta + static_cast<std::int64_t>(bh) * p.t;
  float* dq_base = p.dq_accum + static_cast<std::int64_t>(bh) * p.t * HS;
  const std::uint64_t head = static_cast<std::uint64_t>(b) * p.total_heads + p.head_offset + h;

  const int first_q_block = p.causal ? k0 / kBlockM : 0;
  const int n_q_blocks = (p.t + kBlockM - 1) / kBlockM;

  auto load_q_tile = [&](int qb, int stage) {
    const int q0 = qb * kBlockM;
    load_tile<T, HS, kBlockM>(sQ + stage * kBlockM * HS, q_base, qkv_row, q0, p.t);
    load_tile<T, HS, kBlockM>(sdO + stage * kBlockM * HS, do_base, out_row, q0, p.t);
    for (int i = threadIdx.x; i < kBlockM; i += kThreads) {
      const int q = q0 + i;
      // Rows past T: +inf lse makes their probabilities exactly 0.
      sLse[stage * kBlockM + i] = q < p.t ? lse_base[q] * kLog2e : INFINITY;
      sD[stage * kBlockM + i] = q < p.t ? d_base[q] : 0.0f;
    }
  };

  load_tile<T, HS, kBlockN>(sK, k_base, qkv_row, k0, p.t);
  load_tile<T, HS, kBlockN>(sV, v_base, qkv_row, k0, p.t);
  if (first_q_block < n_q_blocks) load_q_tile(first_q_block, 0);
  cp_async_commit();

  float dk[kDT][4], dv[kDT][4];
#pragma unroll
  for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dt][e] = dv[dt][e] = 0.0f;

  const int key_row = warp * 16;  // this warp's keys within the CTA tile
  for (int qb = first_q_block; qb < n_q_blocks; ++qb) {
    const int stage = (qb - first_q_block) & 1;
    if (qb + 1 < n_q_blocks) {
      load_q_tile(qb + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* cQ = sQ + stage * kBlockM * HS;
    const T* cdO = sdO + stage * kBlockM * HS;
    const float* cLse = sLse + stage * kBlockM;
    const float* cD = sD + stage * kBlockM;
    const int q0 = qb * kBlockM;

    // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys.
    float s[kNT][4], dp[kNT][4];
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) {
      std::uint32_t ak[4], av[4];
      ldmatrix_x4(ak, sK + swizzle<HS>(key_row + a_row(lane), ks * 2 + a_chunk(lane)));
      ldmatrix_x4(av, sV + swizzle<HS>(key_row + a_row(lane), ks * 2 + a_chunk(lane)));
#pragma unroll
      for (int nt = 0; nt < kNT; nt += 2) {
        const int q = nt * 8 + b_row(lane);
        const int chunk = ks * 2 + b_chunk(lane);
        std::uint32_t bq[4], bo[4];
        ldmatrix_x4(bq, cQ + swizzle<HS>(q, chunk));
        ldmatrix_x4(bo, cdO + swizzle<HS>(q, chunk));
        mma_16816<T>(s[nt], ak, bq[0], bq[1]);
        mma_16816<T>(s[nt + 1], ak, bq[2], bq[3]);
        mma_16816<T>(dp[nt], av, bo[0], bo[1]);
        mma_16816<T>(dp[nt + 1], av, bo[2], bo[3]);
      }
    }

    // P^T, dS^T (scaled by the softmax scale) and P^T with dropout, in place of s / dp.
    const bool need_mask = (k0 + kBlockN > p.t) || (p.causal && k0 + kBlockN - 1 > q0);
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int kj = k0 + key_row + acc_row(lane, e);
        const int qc = nt * 8 + acc_col(lane, e);
        const int qi = q0 + qc;
        float pr = exp2f(s[nt][e] * p.scale_log2 - cLse[qc]);
        if (need_mask && (kj >= p.t || (p.causal && kj > qi))) pr = 0.0f;
        float dropf = 1.0f;
        if (kDropout && qi < p.t && kj < p.t)
          dropf = dropout_factor(head, p.t, qi, kj, p.dropout_p, p.keep_scale, p.seed, p.offset);
        const float ds = pr * (dp[nt][e] * dropf - cD[qc]) * p.scale;
        s[nt][e] = pr * dropf;  // P^T with dropout, for dV
        dp[nt][e] = ds;         // scale * dS^T, for dK and dQ
      }

    // dS^T to shared memory for the dQ product (row = key, 16-byte chunk = 8 queries).
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = key_row + acc_row(lane, half * 2);
        T* dst = sdS + swizzle_elem<kBlockM>(r, nt * 8 + acc_col(lane, 0));
        *reinterpret_cast<std::uint32_t*>(dst) = pack2<T>(dp[nt][half * 2], dp[nt][half * 2 + 1]);
      }

    // dV += (P^T d) dO, then dK += dS^T Q (A operands straight from the accumulators; two loops
    // keep fewer fragments live at once).
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      std::uint32_t ap[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int tile = 2 * kk + a_from_acc_tile(r), e = a_from_acc_elem(r);
        ap[r] = pack2<T>(s[tile][e], s[tile][e + 1]);
      }
#pragma unroll
      for (int dt = 0; dt < kDT; dt += 2) {
        std::uint32_t bo[4];
        ldmatrix_x4_trans(bo, cdO + swizzle<HS>(kk * 16 + bt_row(lane), dt + bt_chunk(lane)));
        mma_16816<T>(dv[dt], ap, bo[0], bo[1]);
        mma_16816<T>(dv[dt + 1], ap, bo[2], bo[3]);
      }
    }
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      std::uint32_t ads[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int tile = 2 * kk + a_from_acc_tile(r), e = a_from_acc_elem(r);
        ads[r] = pack2<T>(dp[tile][e], dp[tile][e + 1]);
      }
#pragma unroll
      for (int dt = 0; dt < kDT; dt += 2) {
        std::uint32_t bq[4];
        ldmatrix_x4_trans(bq, cQ + swizzle<HS>(kk * 16 + bt_row(lane), dt + bt_chunk(lane)));
        mma_16816<T>(dk[dt], ads, bq[0], bq[1]);
        mma_16816<T>(dk[dt + 1], ads, bq[2], bq[3]);
      }
    }
    __syncthreads();  // dS^T complete

    // dQ rows 16*warp.. of this query tile += dS K, added to the fp32 accumulators.
    {
      const int m0 = warp * 16;
      constexpr int kDChunk = HS < 64 ? HS : 64;  // output columns per pass (bounds registers)
#pragma unroll
      for (int d0 = 0; d0 < HS; d0 += kDChunk) {
        float dq[kDChunk / 8][4];
#pragma unroll
        for (int dt = 0; dt < kDChunk / 8; ++dt)
#pragma unroll
          for (int e = 0; e < 4; ++e) dq[dt][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk) {
          std::uint32_t a[4];
          ldmatrix_x4_trans(a, sdS + swizzle<kBlockM>(kk * 16 + at_row(lane), (m0 >> 3) + at_chunk(lane)));
#pragma unroll
          for (int dt = 0; dt < kDChunk / 8; dt += 2) {
            std::uint32_t bk[4];
            ldmatrix_x4_trans(bk, sK + swizzle<HS>(kk * 16 + bt_row(lane), (d0 >> 3) + dt + bt_chunk(lane)));
            mma_16816<T>(dq[dt], a, bk[0], bk[1]);
            mma_16816<T>(dq[dt + 1], a, bk[2], bk[3]);
          }
        }
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int qi = q0 + m0 + acc_row(lane, half * 2);
          if (qi >= p.t) continue;
          float* row = dq_base + static_cast<std::int64_t>(qi) * HS + d0;
#pragma unroll
          for (int dt = 0; dt < kDChunk / 8; ++dt) {
            atomicAdd(row + dt * 8 + acc_col(lane, 0), dq[dt][half * 2]);
            atomicAdd(row + dt * 8 + acc_col(lane, 1), dq[dt][half * 2 + 1]);
          }
        }
      }
    }
    __syncthreads();  // before the next tile's loads overwrite Q / dO / dS^T of this stage
  }

  // Store dK and dV of this warp's keys.
  T* dqkv = static_cast<T*>(p.dqkv);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int kj = k0 + key_row + acc_row(lane, half * 2);
    if (kj >= p.t) continue;
    T* row = dqkv + static_cast<std::int64_t>(kj) * qkv_row + head_col;
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt) {
      *reinterpret_cast<std::uint32_t*>(row + HS + dt * 8 + acc_col(lane, 0)) =
          pack2<T>(dk[dt][half * 2], dk[dt][half * 2 + 1]);
      *reinterpret_cast<std::uint32_t*>(row + 2 * HS + dt * 8 + acc_col(lane, 0)) =
          pack2<T>(dv[dt][half * 2], dv[dt][half * 2 + 1]);
    }
  }
}

// ---- launchers (instantiated in kernels/instances/) ---------------------------------------------

// Dropout is a template parameter: its Philox code would otherwise cost the no-dropout kernels
// registers (and spills) they never use.
template <typename T, int HS>
void launch_forward(const FwdParams& p, cudaStream_t stream) {
  using Cfg = FwdConfig<HS>;
  const auto kernel = p.dropout_p > 0.0f ? flash_forward_kernel<T, HS, true> : flash_forward_kernel<T, HS, false>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
  const dim3 grid(static_cast<unsigned>((p.t + Cfg::kBlockM - 1) / Cfg::kBlockM), static_cast<unsigned>(p.b * p.nh));
  kernel<<<grid, kThreads, Cfg::kSmemBytes, stream>>>(p);
}

template <typename T, int HS>
void launch_backward(const BwdParams& p, cudaStream_t stream) {
  constexpr int kSmem = bwd_smem_bytes<HS>();
  const auto kernel = p.dropout_p > 0.0f ? flash_backward_kernel<T, HS, true> : flash_backward_kernel<T, HS, false>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  const dim3 grid(static_cast<unsigned>((p.t + BwdConfig::kBlockN - 1) / BwdConfig::kBlockN),
                  static_cast<unsigned>(p.b * p.nh));
  kernel<<<grid, kThreads, kSmem, stream>>>(p);
}

// Declarations of the instances (definitions: kernels/instances/attention_<dtype>_hs<HS>.cu).
#define BIGNLP_FLASH_DECLARE(T, HS)                                      \
  extern template void launch_forward<T, HS>(const FwdParams&, cudaStream_t); \
  extern template void launch_backward<T, HS>(const BwdParams&, cudaStream_t);
BIGNLP_FLASH_DECLARE(__nv_bfloat16, 64)
BIGNLP_FLASH_DECLARE(__nv_bfloat16, 128)
BIGNLP_FLASH_DECLARE(__half, 64)
BIGNLP_FLASH_DECLARE(__half, 128)
#undef BIGNLP_FLASH_DECLARE

}  // namespace bignlp::kernels::flash
