// CPU fused causal attention over Megatron's head-interleaved QKV, one (batch, head) pair at a time.
//
// Per (b, h), with Q, K, V the (T, HS) fp32 slices and d_ij = keep_ij / (1 - p_drop) (0 if dropped):
//   forward   S = scale Q K^T (masked j > i when causal), lse_i = logsumexp_j S_ij,
//             P = exp(S - lse), O = (P * d) V; only lse is kept.
//   backward  P recomputed from lse; dV = (P * d)^T dO; dP = (dO V^T) * d; D_i = dO_i . O_i (equal to
//             sum_j P_ij dP_ij even with dropout); dS = P * (dP - D); dQ = scale dS K; dK = scale dS^T Q.
// This is the flash-attention formulation (no (T, T) tensor survives the op); a CUDA kernel with the
// same Philox indices matches it. The (T, T) products go through OpenBLAS sgemm (which splits rows
// and columns, never the reduction, across its threads); row-wise softmax work is split by rows.

#include <cmath>
#include <limits>
#include <vector>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {
namespace {

struct Dims {
  std::int64_t t, b, nh, hs, row;  // row: elements per (t, b) row of qkv
  float scale;
  std::int64_t total_heads;
};

Dims dims_of(const TensorView& qkv, const AttentionParams& p) {
  Dims d;
  d.t = qkv.size(0);
  d.b = qkv.size(1);
  d.nh = p.num_heads;
  d.hs = qkv.size(2) / (3 * d.nh);
  d.row = qkv.size(2);
  d.scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.hs));
  d.total_heads = p.total_heads > 0 ? p.total_heads : p.num_heads;
  return d;
}

/// Widens head h of batch b: part 0 = q, 1 = k, 2 = v, into dst (T, HS).
template <typename T>
void gather(const T* qkv, const Dims& d, std::int64_t b, std::int64_t h, int part, float* dst) {
  for (std::int64_t t = 0; t < d.t; ++t) {
    const T* src = qkv + (t * d.b + b) * d.row + h * 3 * d.hs + part * d.hs;
    for (std::int64_t e = 0; e < d.hs; ++e) dst[t * d.hs + e] = to_f(src[e]);
  }
}

/// Row-major C (m, n) = alpha * op(A) op(B) (+ beta C) with packed operands.
void sgemm(const OpContext& ctx, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, const float* b, float beta, float* c) {
  cpu::sgemm(ctx, ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

/// P = exp(S - lse) on allowed entries (0 above the diagonal when causal), in place; with
/// dropout, `pd` (may alias nothing) receives P * d. Returns nothing; lse given per row.
void probabilities(const OpContext& ctx, const Dims& d, const AttentionParams& params, std::uint64_t head_index,
                   const float* lse, float* s, float* pd) {
  const DropoutParams& drop = params.dropout;
  parallel_for(ctx, d.t, d.t, [&](std::int64_t i) {
    const std::int64_t jend = params.causal ? i + 1 : d.t;
    float* row = s + i * d.t;
    for (std::int64_t j = 0; j < jend; ++j) row[j] = std::exp(row[j] - lse[i]);
    for (std::int64_t j = jend; j < d.t; ++j) row[j] = 0.0f;
    if (pd != nullptr) {
      float* out = pd + i * d.t;
      dropout_multipliers(drop.seed, drop.offset, (head_index * d.t + i) * d.t, jend, drop.p, out);
      for (std::int64_t j = 0; j < jend; ++j) out[j] *= row[j];
      for (std::int64_t j = jend; j < d.t; ++j) out[j] = 0.0f;
    }
  });
}

}  // namespace

void attention_forward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                       const AttentionParams& params) {
  const Dims d = dims_of(qkv, params);
  const bool dropout = params.dropout.p > 0.0f;
  float* lse_out = static_cast<float*>(lse.raw());
  dispatch_float(qkv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(qkv.raw());
    T* dst = static_cast<T*>(out.raw());
    std::vector<float> q(d.t * d.hs), k(d.t * d.hs), v(d.t * d.hs), o(d.t * d.hs), s(d.t * d.t),
        pd(dropout ? d.t * d.t : 0), l(d.t);
    for (std::int64_t b = 0; b < d.b; ++b)
      for (std::int64_t h = 0; h < d.nh; ++h) {
        const std::uint64_t head_index = static_cast<std::uint64_t>(b * d.total_heads + params.head_offset + h);
        gather(src, d, b, h, 0, q.data());
        gather(src, d, b, h, 1, k.data());
        gather(src, d, b, h, 2, v.data());
        sgemm(ctx, false, true, d.t, d.t, d.hs, d.scale, q.data(), k.data(), 0.0f, s.data());
        parallel_for(ctx, d.t, d.t, [&](std::int64_t i) {
          const std::int64_t jend = params.causal ? i + 1 : d.t;
          const float* row = &s[i * d.t];
          float mx = -std::numeric_limits<float>::infinity();
          for (std::int64_t j = 0; j < jend; ++j) mx = std::max(mx, row[j]);
          double sum = 0.0;
          for (std::int64_t j = 0; j < jend; ++j) sum += std::exp(row[j] - mx);  // fp32 exp, fp64 sum
          l[i] = mx + static_cast<float>(std::log(sum));
        });
        probabilities(ctx, d, params, head_index, l.data(), s.data(), dropout ? pd.data() : nullptr);
        sgemm(ctx, false, false, d.t, d.hs, d.t, 1.0f, dropout ? pd.data() : s.data(), v.data(), 0.0f, o.data());
        for (std::int64_t i = 0; i < d.t; ++i) {
          T* orow = dst + (i * d.b + b) * (d.nh * d.hs) + h * d.hs;
          for (std::int64_t e = 0; e < d.hs; ++e) orow[e] = from_f<T>(o[i * d.hs + e]);
          lse_out[(b * d.nh + h) * d.t + i] = l[i];
        }
      }
  });
}

void attention_backward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                        const TensorView& dout, const TensorView& dqkv, const AttentionParams& params) {
  const Dims d = dims_of(qkv, params);
  const bool dropout = params.dropout.p > 0.0f;
  const float* lse_in = static_cast<const float*>(lse.raw());
  dispatch_float(qkv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(qkv.raw());
    const T* op = static_cast<const T*>(out.raw());
    const T* gp = static_cast<const T*>(dout.raw());
    T* dst = static_cast<T*>(dqkv.raw());
    const std::int64_t n = d.t * d.hs;
    std::vector<float> q(n), k(n), v(n), g(n), dq(n), dk(n), dv(n), s(d.t * d.t), dp(d.t * d.t),
        pd(dropout ? d.t * d.t : 0), big_d(d.t);
    for (std::int64_t b = 0; b < d.b; ++b)
      for (std::int64_t h = 0; h < d.nh; ++h) {
        const std::uint64_t head_index = static_cast<std::uint64_t>(b * d.total_heads + params.head_offset + h);
        const float* lse_row = lse_in + (b * d.nh + h) * d.t;
        gather(src, d, b, h, 0, q.data());
        gather(src, d, b, h, 1, k.data());
        gather(src, d, b, h, 2, v.data());
        for (std::int64_t i = 0; i < d.t; ++i) {
          const std::int64_t orow = (i * d.b + b) * (d.nh * d.hs) + h * d.hs;
          float acc = 0.0f;
          for (std::int64_t e = 0; e < d.hs; ++e) {
            g[i * d.hs + e] = to_f(gp[orow + e]);
            acc += g[i * d.hs + e] * to_f(op[orow + e]);
          }
          big_d[i] = acc;
        }
        sgemm(ctx, false, true, d.t, d.t, d.hs, d.scale, q.data(), k.data(), 0.0f, s.data());
        probabilities(ctx, d, params, head_index, lse_row, s.data(), dropout ? pd.data() : nullptr);
        sgemm(ctx, true, false, d.t, d.hs, d.t, 1.0f, dropout ? pd.data() : s.data(), g.data(), 0.0f, dv.data());
        sgemm(ctx, false, true, d.t, d.t, d.hs, 1.0f, g.data(), v.data(), 0.0f, dp.data());
        parallel_for(ctx, d.t, d.t, [&](std::int64_t i) {
          const std::int64_t jend = params.causal ? i + 1 : d.t;
          float* dprow = &dp[i * d.t];
          const float* prow = &s[i * d.t];
          // With dropout pd = P * d, so d = pd / P where P > 0; P * d * dP' = pd * dP'.
          for (std::int64_t j = 0; j < jend; ++j) {
            const float pdj = dropout ? pd[i * d.t + j] : prow[j];
            dprow[j] = pdj * dprow[j] - prow[j] * big_d[i];
          }
          for (std::int64_t j = jend; j < d.t; ++j) dprow[j] = 0.0f;
        });
        sgemm(ctx, false, false, d.t, d.hs, d.t, d.scale, dp.data(), k.data(), 0.0f, dq.data());
        sgemm(ctx, true, false, d.t, d.hs, d.t, d.scale, dp.data(), q.data(), 0.0f, dk.data());
        for (std::int64_t t = 0; t < d.t; ++t) {
          T* row = dst + (t * d.b + b) * d.row + h * 3 * d.hs;
          for (std::int64_t e = 0; e < d.hs; ++e) {
            row[e] = from_f<T>(dq[t * d.hs + e]);
            row[d.hs + e] = from_f<T>(dk[t * d.hs + e]);
            row[2 * d.hs + e] = from_f<T>(dv[t * d.hs + e]);
          }
        }
      }
  });
}

}  // namespace bignlp::ops::cpu
