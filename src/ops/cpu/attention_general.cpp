// CPU general attention (separate q, k, v views; bias; key padding; causal with a KV-cache
// offset), one (batch, head) pair at a time, in the same flash-attention formulation as the fused
// op in attention.cpp (only lse survives the forward):
//   forward   S = scale Q K^T + bias_h; row i keeps keys j < L_i (L_i = min(Tk, key_lengths[b],
//             kv_offset + i + 1 when causal)), lse_i = logsumexp_{j < L_i} S_ij, P = exp(S - lse),
//             O = (P * d) V with d the dropout multipliers.
//   backward  dV = (P * d)^T dO; dP = dO V^T; D_i = dO_i . O_i; dS = (P * d) dP - P D;
//             dbias_h += dS; dQ = scale dS K; dK = scale dS^T Q.
// A row with L_i = 0 (or only -inf scores) gets lse = +inf, so P = exp(S - lse) = 0 on it: out is 0,
// D is 0 and every gradient it contributes is 0 (no NaN), as in flash-attention's kernels.
// With no bias, no key padding and kv_offset 0 the operations, their shapes (hence the GEMM slicing)
// and their order equal attention.cpp's, so on causal self-attention the results are bit-identical.
#include <cmath>
#include <limits>
#include <vector>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {
namespace {

struct Dims {
  std::int64_t tq, tk, b, nh, hs;
  float scale;
  std::int64_t total_heads;
};

Dims dims_of(const TensorView& q, const TensorView& k, const GeneralAttentionParams& p) {
  Dims d;
  d.tq = q.size(0);
  d.tk = k.size(0);
  d.b = q.size(1);
  d.nh = p.num_heads;
  d.hs = q.rank() == 4 ? q.size(3) : q.size(2) / d.nh;
  d.scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.hs));
  d.total_heads = p.total_heads > 0 ? p.total_heads : p.num_heads;
  return d;
}

/// Element strides of a (T, B, NH*HS) or (T, B, NH, HS) view: time, batch, head.
struct HeadStrides {
  std::int64_t t, b, h;
};

HeadStrides head_strides(const TensorView& x, std::int64_t hs) {
  return {x.stride(0), x.stride(1), x.rank() == 4 ? x.stride(2) : hs};
}

/// Widens head h of batch row b of x (T rows) into dst (T, HS).
template <typename T>
void gather(const TensorView& x, std::int64_t rows, std::int64_t hs, std::int64_t b, std::int64_t h, float* dst) {
  const HeadStrides st = head_strides(x, hs);
  const T* base = static_cast<const T*>(x.raw()) + b * st.b + h * st.h;
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t e = 0; e < hs; ++e) dst[t * hs + e] = to_f(base[t * st.t + e]);
}

/// Stores src (T, HS) into head h of batch row b of x, rounding once.
template <typename T>
void scatter(const float* src, std::int64_t rows, std::int64_t hs, std::int64_t b, std::int64_t h,
             const TensorView& x) {
  const HeadStrides st = head_strides(x, hs);
  T* base = static_cast<T*>(x.raw()) + b * st.b + h * st.h;
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t e = 0; e < hs; ++e) base[t * st.t + e] = from_f<T>(src[t * hs + e]);
}

/// Row-major C (m, n) = alpha * op(A) op(B) with packed operands.
void sgemm(const OpContext& ctx, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, const float* b, float* c) {
  cpu::sgemm(ctx, ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, 0.0f, c, n);
}

/// Unmasked keys of query i in batch row b: [0, L_i).
std::int64_t key_limit(const Dims& d, const GeneralAttentionParams& p, std::span<const std::int32_t> key_lengths,
                       std::int64_t b, std::int64_t i) {
  std::int64_t limit = d.tk;
  if (!key_lengths.empty()) limit = std::min<std::int64_t>(limit, key_lengths[b]);
  if (p.causal) limit = std::min(limit, p.kv_offset + i + 1);
  return limit;
}

/// S = scale Q K^T (+ bias of head h): the (Tq, Tk) scores.
void scores(const OpContext& ctx, const Dims& d, const float* q, const float* k, const float* bias, std::int64_t h,
            float* s) {
  sgemm(ctx, false, true, d.tq, d.tk, d.hs, d.scale, q, k, s);
  if (bias == nullptr) return;
  const float* bh = bias + h * d.tq * d.tk;
  parallel_for(ctx, d.tq, d.tk, [&](std::int64_t i) {
    for (std::int64_t j = 0; j < d.tk; ++j) s[i * d.tk + j] += bh[i * d.tk + j];
  });
}

/// P = exp(S - lse) on the unmasked prefix of each row (0 elsewhere), in place; with dropout, `pd`
/// receives P * d.
void probabilities(const OpContext& ctx, const Dims& d, const GeneralAttentionParams& params,
                   std::span<const std::int32_t> key_lengths, std::int64_t b, std::uint64_t head_index,
                   const float* lse, float* s, float* pd) {
  const DropoutParams& drop = params.dropout;
  parallel_for(ctx, d.tq, d.tk, [&](std::int64_t i) {
    const std::int64_t jend = key_limit(d, params, key_lengths, b, i);
    float* row = s + i * d.tk;
    for (std::int64_t j = 0; j < jend; ++j) row[j] = std::exp(row[j] - lse[i]);
    for (std::int64_t j = std::max<std::int64_t>(jend, 0); j < d.tk; ++j) row[j] = 0.0f;
    if (pd != nullptr) {
      float* out = pd + i * d.tk;
      const std::uint64_t first = (head_index * static_cast<std::uint64_t>(d.tq) + static_cast<std::uint64_t>(i)) *
                                  static_cast<std::uint64_t>(d.tk);
      dropout_multipliers(drop.seed, drop.offset, first, jend, drop.p, out);
      for (std::int64_t j = 0; j < jend; ++j) out[j] *= row[j];
      for (std::int64_t j = std::max<std::int64_t>(jend, 0); j < d.tk; ++j) out[j] = 0.0f;
    }
  });
}

}  // namespace

void attention_general_forward(const OpContext& ctx, const TensorView& q, const TensorView& k, const TensorView& v,
                               const TensorView& bias, std::span<const std::int32_t> key_lengths,
                               const TensorView& out, const TensorView& lse, const GeneralAttentionParams& params) {
  const Dims d = dims_of(q, k, params);
  const bool dropout = params.dropout.p > 0.0f;
  const float* bias_p = bias.defined() ? static_cast<const float*>(bias.raw()) : nullptr;
  float* lse_out = static_cast<float*>(lse.raw());
  dispatch_float(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* dst = static_cast<T*>(out.raw());
    std::vector<float> qh(d.tq * d.hs), kh(d.tk * d.hs), vh(d.tk * d.hs), o(d.tq * d.hs), s(d.tq * d.tk),
        pd(dropout ? d.tq * d.tk : 0), l(d.tq);
    for (std::int64_t b = 0; b < d.b; ++b)
      for (std::int64_t h = 0; h < d.nh; ++h) {
        const std::uint64_t head_index = static_cast<std::uint64_t>(b * d.total_heads + params.head_offset + h);
        gather<T>(q, d.tq, d.hs, b, h, qh.data());
        gather<T>(k, d.tk, d.hs, b, h, kh.data());
        gather<T>(v, d.tk, d.hs, b, h, vh.data());
        scores(ctx, d, qh.data(), kh.data(), bias_p, h, s.data());
        parallel_for(ctx, d.tq, d.tk, [&](std::int64_t i) {
          const std::int64_t jend = key_limit(d, params, key_lengths, b, i);
          const float* row = &s[i * d.tk];
          float mx = -std::numeric_limits<float>::infinity();
          for (std::int64_t j = 0; j < jend; ++j) mx = std::max(mx, row[j]);
          if (mx == -std::numeric_limits<float>::infinity()) {  // no unmasked key: P = exp(S - inf) = 0
            l[i] = std::numeric_limits<float>::infinity();
            return;
          }
          double sum = 0.0;
          for (std::int64_t j = 0; j < jend; ++j) sum += std::exp(row[j] - mx);  // fp32 exp, fp64 sum
          l[i] = mx + static_cast<float>(std::log(sum));
        });
        probabilities(ctx, d, params, key_lengths, b, head_index, l.data(), s.data(), dropout ? pd.data() : nullptr);
        sgemm(ctx, false, false, d.tq, d.hs, d.tk, 1.0f, dropout ? pd.data() : s.data(), vh.data(), o.data());
        for (std::int64_t i = 0; i < d.tq; ++i) {
          T* orow = dst + (i * d.b + b) * (d.nh * d.hs) + h * d.hs;
          for (std::int64_t e = 0; e < d.hs; ++e) orow[e] = from_f<T>(o[i * d.hs + e]);
          lse_out[(b * d.nh + h) * d.tq + i] = l[i];
        }
      }
  });
}

void attention_general_backward(const OpContext& ctx, const TensorView& q, const TensorView& k, const TensorView& v,
                                const TensorView& bias, std::span<const std::int32_t> key_lengths,
                                const TensorView& out, const TensorView& lse, const TensorView& dout,
                                const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                const TensorView& dbias, const GeneralAttentionParams& params) {
  const Dims d = dims_of(q, k, params);
  const bool dropout = params.dropout.p > 0.0f;
  const float* bias_p = bias.defined() ? static_cast<const float*>(bias.raw()) : nullptr;
  float* dbias_p = dbias.defined() ? static_cast<float*>(dbias.raw()) : nullptr;
  const float* lse_in = static_cast<const float*>(lse.raw());
  dispatch_float(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* op = static_cast<const T*>(out.raw());
    const T* gp = static_cast<const T*>(dout.raw());
    const std::int64_t nq = d.tq * d.hs, nk = d.tk * d.hs;
    std::vector<float> qh(nq), kh(nk), vh(nk), g(nq), dqh(nq), dkh(nk), dvh(nk), s(d.tq * d.tk), dp(d.tq * d.tk),
        pd(dropout ? d.tq * d.tk : 0), big_d(d.tq);
    for (std::int64_t b = 0; b < d.b; ++b)
      for (std::int64_t h = 0; h < d.nh; ++h) {
        const std::uint64_t head_index = static_cast<std::uint64_t>(b * d.total_heads + params.head_offset + h);
        const float* lse_row = lse_in + (b * d.nh + h) * d.tq;
        gather<T>(q, d.tq, d.hs, b, h, qh.data());
        gather<T>(k, d.tk, d.hs, b, h, kh.data());
        gather<T>(v, d.tk, d.hs, b, h, vh.data());
        for (std::int64_t i = 0; i < d.tq; ++i) {
          const std::int64_t orow = (i * d.b + b) * (d.nh * d.hs) + h * d.hs;
          float acc = 0.0f;
          for (std::int64_t e = 0; e < d.hs; ++e) {
            g[i * d.hs + e] = to_f(gp[orow + e]);
            acc += g[i * d.hs + e] * to_f(op[orow + e]);
          }
          big_d[i] = acc;
        }
        scores(ctx, d, qh.data(), kh.data(), bias_p, h, s.data());
        probabilities(ctx, d, params, key_lengths, b, head_index, lse_row, s.data(), dropout ? pd.data() : nullptr);
        sgemm(ctx, true, false, d.tk, d.hs, d.tq, 1.0f, dropout ? pd.data() : s.data(), g.data(), dvh.data());
        sgemm(ctx, false, true, d.tq, d.tk, d.hs, 1.0f, g.data(), vh.data(), dp.data());
        parallel_for(ctx, d.tq, d.tk, [&](std::int64_t i) {
          const std::int64_t jend = key_limit(d, params, key_lengths, b, i);
          float* dprow = &dp[i * d.tk];
          const float* prow = &s[i * d.tk];
          // With dropout pd = P * d, so P * d * dP' = pd * dP'.
          for (std::int64_t j = 0; j < jend; ++j) {
            const float pdj = dropout ? pd[i * d.tk + j] : prow[j];
            dprow[j] = pdj * dprow[j] - prow[j] * big_d[i];
          }
          for (std::int64_t j = std::max<std::int64_t>(jend, 0); j < d.tk; ++j) dprow[j] = 0.0f;
          // dS is the gradient of the bias too; batch rows add in order (b is the outer loop).
          if (dbias_p != nullptr) {
            float* db = dbias_p + (h * d.tq + i) * d.tk;
            for (std::int64_t j = 0; j < jend; ++j) db[j] += dprow[j];
          }
        });
        sgemm(ctx, false, false, d.tq, d.hs, d.tk, d.scale, dp.data(), kh.data(), dqh.data());
        sgemm(ctx, true, false, d.tk, d.hs, d.tq, d.scale, dp.data(), qh.data(), dkh.data());
        scatter<T>(dqh.data(), d.tq, d.hs, b, h, dq);
        scatter<T>(dkh.data(), d.tk, d.hs, b, h, dk);
        scatter<T>(dvh.data(), d.tk, d.hs, b, h, dv);
      }
  });
}

}  // namespace bignlp::ops::cpu
