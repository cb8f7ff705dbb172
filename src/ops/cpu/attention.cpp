// CPU fused causal attention over Megatron's head-interleaved QKV, one (batch, head) pair per task.
//
// Forward per query row i: s_j = scale q_i.k_j (j <= i when causal), lse_i = logsumexp_j s_j,
// p_ij = exp(s_j - lse_i), o_i = sum_j p_ij d_ij v_j with d_ij = keep_ij / (1 - p_drop) (0 if dropped).
// Only lse is kept. The backward recomputes p from lse and uses D_i = do_i . o_i, which equals
// sum_j p_ij d_ij (do_i . v_j) even with dropout, so:
//   dv_j += p_ij d_ij do_i;  dS_ij = p_ij (d_ij do_i . v_j - D_i);  dq_i += scale dS_ij k_j;
//   dk_j += scale dS_ij q_i.
// This is the flash-attention formulation; a CUDA kernel with the same Philox indices matches it.
#include <cmath>
#include <limits>
#include <vector>

#include "../backend.h"
#include "bignlp/ops/philox.h"
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

float dot(const float* a, const float* b, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t e = 0; e < n; ++e) s += a[e] * b[e];
  return s;
}

}  // namespace

void attention_forward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                       const AttentionParams& params) {
  const Dims d = dims_of(qkv, params);
  const float p_drop = params.dropout.p;
  const float keep_scale = 1.0f / (1.0f - p_drop);
  float* lse_out = static_cast<float*>(lse.raw());
  dispatch_float(qkv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(qkv.raw());
    T* dst = static_cast<T*>(out.raw());
    parallel_for(ctx, d.b * d.nh, d.t * d.t * d.hs, [&](std::int64_t task) {
      const std::int64_t b = task / d.nh, h = task % d.nh;
      const std::uint64_t head_index = static_cast<std::uint64_t>(b * d.total_heads + params.head_offset + h);
      std::vector<float> q(d.t * d.hs), k(d.t * d.hs), v(d.t * d.hs), s(d.t), o(d.hs);
      gather(src, d, b, h, 0, q.data());
      gather(src, d, b, h, 1, k.data());
      gather(src, d, b, h, 2, v.data());
      for (std::int64_t i = 0; i < d.t; ++i) {
        const std::int64_t jend = params.causal ? i + 1 : d.t;
        float mx = -std::numeric_limits<float>::infinity();
        for (std::int64_t j = 0; j < jend; ++j) {
          s[j] = d.scale * dot(&q[i * d.hs], &k[j * d.hs], d.hs);
          mx = std::max(mx, s[j]);
        }
        double sum = 0.0;
        for (std::int64_t j = 0; j < jend; ++j) sum += std::exp(s[j] - mx);  // fp32 exp, fp64 sum
        const float l = mx + static_cast<float>(std::log(sum));
        std::fill(o.begin(), o.end(), 0.0f);
        const std::uint64_t row_index = (head_index * d.t + i) * d.t;
        for (std::int64_t j = 0; j < jend; ++j) {
          float pj = std::exp(s[j] - l);
          if (p_drop > 0.0f)
            pj = dropout_keep(params.dropout.seed, params.dropout.offset, row_index + j, p_drop) ? pj * keep_scale : 0.0f;
          if (pj == 0.0f) continue;
          for (std::int64_t e = 0; e < d.hs; ++e) o[e] += pj * v[j * d.hs + e];
        }
        T* orow = dst + (i * d.b + b) * (d.nh * d.hs) + h * d.hs;
        for (std::int64_t e = 0; e < d.hs; ++e) orow[e] = from_f<T>(o[e]);
        lse_out[(b * d.nh + h) * d.t + i] = l;
      }
    });
  });
}

void attention_backward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                        const TensorView& dout, const TensorView& dqkv, const AttentionParams& params) {
  const Dims d = dims_of(qkv, params);
  const float p_drop = params.dropout.p;
  const float keep_scale = 1.0f / (1.0f - p_drop);
  const float* lse_in = static_cast<const float*>(lse.raw());
  dispatch_float(qkv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(qkv.raw());
    const T* op = static_cast<const T*>(out.raw());
    const T* gp = static_cast<const T*>(dout.raw());
    T* dst = static_cast<T*>(dqkv.raw());
    parallel_for(ctx, d.b * d.nh, d.t * d.t * d.hs, [&](std::int64_t task) {
      const std::int64_t b = task / d.nh, h = task % d.nh;
      const std::uint64_t head_index = static_cast<std::uint64_t>(b * d.total_heads + params.head_offset + h);
      const std::int64_t n = d.t * d.hs;
      std::vector<float> q(n), k(n), v(n), dq(n, 0.0f), dk(n, 0.0f), dv(n, 0.0f), g(d.hs);
      gather(src, d, b, h, 0, q.data());
      gather(src, d, b, h, 1, k.data());
      gather(src, d, b, h, 2, v.data());
      for (std::int64_t i = 0; i < d.t; ++i) {
        const std::int64_t jend = params.causal ? i + 1 : d.t;
        const std::int64_t orow = (i * d.b + b) * (d.nh * d.hs) + h * d.hs;
        float big_d = 0.0f;
        for (std::int64_t e = 0; e < d.hs; ++e) {
          g[e] = to_f(gp[orow + e]);
          big_d += g[e] * to_f(op[orow + e]);
        }
        const float l = lse_in[(b * d.nh + h) * d.t + i];
        const std::uint64_t row_index = (head_index * d.t + i) * d.t;
        for (std::int64_t j = 0; j < jend; ++j) {
          const float pj = std::exp(d.scale * dot(&q[i * d.hs], &k[j * d.hs], d.hs) - l);
          float dj = 1.0f;
          if (p_drop > 0.0f)
            dj = dropout_keep(params.dropout.seed, params.dropout.offset, row_index + j, p_drop) ? keep_scale : 0.0f;
          const float dp = dj * dot(g.data(), &v[j * d.hs], d.hs);
          const float ds = pj * (dp - big_d) * d.scale;
          const float pd = pj * dj;
          for (std::int64_t e = 0; e < d.hs; ++e) {
            dq[i * d.hs + e] += ds * k[j * d.hs + e];
            dk[j * d.hs + e] += ds * q[i * d.hs + e];
            dv[j * d.hs + e] += pd * g[e];
          }
        }
      }
      for (std::int64_t t = 0; t < d.t; ++t) {
        T* row = dst + (t * d.b + b) * d.row + h * 3 * d.hs;
        for (std::int64_t e = 0; e < d.hs; ++e) {
          row[e] = from_f<T>(dq[t * d.hs + e]);
          row[d.hs + e] = from_f<T>(dk[t * d.hs + e]);
          row[2 * d.hs + e] = from_f<T>(dv[t * d.hs + e]);
        }
      }
    });
  });
}

}  // namespace bignlp::ops::cpu
