// CPU GEMM through OpenBLAS sgemm. 16-bit inputs are widened to fp32 copies first (exact), so the
// product accumulates in fp32 exactly like a tensor-core GEMM with fp32 accumulation; a 16-bit
// output is rounded once after alpha, beta and the bias are applied.
#include <algorithm>
#include <vector>

#include "../backend.h"
#include "cpu_common.h"
#include "gelu_math.h"

namespace bignlp::ops::cpu {
namespace {

std::int64_t leading_dim(const TensorView& m) { return m.size(0) <= 1 ? std::max<std::int64_t>(1, m.size(1)) : m.stride(0); }

/// Packed fp32 copy of a 2-D matrix with unit inner stride.
std::vector<float> widen(const OpContext& ctx, const TensorView& m) {
  const std::int64_t rows = m.size(0), cols = m.size(1), ld = leading_dim(m);
  std::vector<float> out(static_cast<std::size_t>(rows * cols));
  dispatch_float(m.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(m.raw());
    parallel_for(ctx, rows, cols, [&](std::int64_t r) {
      for (std::int64_t j = 0; j < cols; ++j) out[r * cols + j] = to_f(src[r * ld + j]);
    });
  });
  return out;
}

}  // namespace

void gemm(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
          const GemmParams& params, const TensorView& bias) {
  const std::int64_t m = c.size(0), n = c.size(1);
  const std::int64_t k = params.trans_a ? a.size(0) : a.size(1);
  if (m == 0 || n == 0) return;
  const std::int64_t ldc = leading_dim(c);

  std::vector<float> a32, b32;
  const float* ap = nullptr;
  const float* bp = nullptr;
  std::int64_t lda, ldb;
  if (a.dtype() == DType::kF32) {
    ap = static_cast<const float*>(a.raw());
    bp = static_cast<const float*>(b.raw());
    lda = leading_dim(a);
    ldb = leading_dim(b);
  } else {
    a32 = widen(ctx, a);
    b32 = widen(ctx, b);
    ap = a32.data();
    bp = b32.data();
    lda = std::max<std::int64_t>(1, a.size(1));
    ldb = std::max<std::int64_t>(1, b.size(1));
  }

  auto bias_at = [&](std::int64_t j) -> float {
    if (!bias.defined()) return 0.0f;
    return dispatch_float(bias.dtype(), [&](auto tag) {
      using T = decltype(tag);
      return to_f(static_cast<const T*>(bias.raw())[j]);
    });
  };
  std::vector<float> bias32(bias.defined() ? static_cast<std::size_t>(n) : 0);
  for (std::int64_t j = 0; j < static_cast<std::int64_t>(bias32.size()); ++j) bias32[j] = bias_at(j);

  if (c.dtype() == DType::kF32) {
    float* cp = static_cast<float*>(c.raw());
    if (k == 0) {
      // BLAS leaves C untouched for k == 0 only when beta == 1; spell the definition out.
      parallel_for(ctx, m, n, [&](std::int64_t r) {
        for (std::int64_t j = 0; j < n; ++j) cp[r * ldc + j] = params.beta == 0.0f ? 0.0f : params.beta * cp[r * ldc + j];
      });
    } else {
      sgemm(ctx, params.trans_a, params.trans_b, m, n, k, params.alpha, ap, lda, bp, ldb, params.beta, cp, ldc);
    }
    if (!bias32.empty()) {
      parallel_for(ctx, m, n, [&](std::int64_t r) {
        for (std::int64_t j = 0; j < n; ++j) cp[r * ldc + j] += bias32[j];
      });
    }
    return;
  }

  std::vector<float> tmp(static_cast<std::size_t>(m * n), 0.0f);
  if (k > 0) {
    sgemm(ctx, params.trans_a, params.trans_b, m, n, k, params.alpha, ap, lda, bp, ldb, 0.0f, tmp.data(), n);
  }
  dispatch_float(c.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* cp = static_cast<T*>(c.raw());
    parallel_for(ctx, m, n, [&](std::int64_t r) {
      for (std::int64_t j = 0; j < n; ++j) {
        float v = tmp[r * n + j];
        if (params.beta != 0.0f) v += params.beta * to_f(cp[r * ldc + j]);
        if (!bias32.empty()) v += bias32[j];
        cp[r * ldc + j] = from_f<T>(v);
      }
    });
  });
}

void bias_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dbias) {
  const std::int64_t rows = dy.size(0), cols = dy.size(1);
  float* db = static_cast<float*>(dbias.raw());
  dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(dy.raw());
    parallel_chunks(ctx, cols, 64, [&](std::int64_t c0, std::int64_t c1) {
      std::vector<float> acc(static_cast<std::size_t>(c1 - c0), 0.0f);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = c0; j < c1; ++j) acc[j - c0] += to_f(g[r * cols + j]);
      for (std::int64_t j = c0; j < c1; ++j) db[j] += acc[j - c0];
    });
  });
}

// The fused GEMMs: the product in fp32 (the plain gemm into an fp32 matrix), then the epilogue
// per element from the unrounded value, each output rounded once.
namespace {

std::vector<float> product_f32(const OpContext& ctx, const TensorView& a, const TensorView& b, std::int64_t m,
                               std::int64_t n, const GemmParams& params) {
  std::vector<float> v(static_cast<std::size_t>(m * n), 0.0f);
  GemmParams p = params;
  p.beta = 0.0f;
  cpu::gemm(ctx, a, b, TensorView(v.data(), DType::kF32, Shape{m, n}), p, TensorView{});
  return v;
}

}  // namespace

void gemm_bias_gelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                    const TensorView& pre, const GemmParams& params, const TensorView& bias) {
  const std::int64_t m = c.size(0), n = c.size(1);
  std::vector<float> v = product_f32(ctx, a, b, m, n, params);
  std::vector<float> bias32(static_cast<std::size_t>(n), 0.0f);
  if (bias.defined()) {
    dispatch_float(bias.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* bp = static_cast<const T*>(bias.raw());
      for (std::int64_t j = 0; j < n; ++j) bias32[j] = to_f(bp[j]);
    });
  }
  dispatch_float(c.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* cp = static_cast<T*>(c.raw());
    T* pp = static_cast<T*>(pre.raw());
    parallel_for(ctx, m, n, [&](std::int64_t r) {
      for (std::int64_t j = 0; j < n; ++j) {
        const float x = v[r * n + j] + bias32[j];
        pp[r * n + j] = from_f<T>(x);
        cp[r * n + j] = from_f<T>(gelu_value(x, GeluApprox::kTanh));
      }
    });
  });
}

void gemm_dgelu(const OpContext& ctx, const TensorView& a, const TensorView& b, const TensorView& c,
                const TensorView& pre, const GemmParams& params, const TensorView& dbias) {
  const std::int64_t m = c.size(0), n = c.size(1);
  std::vector<float> v = product_f32(ctx, a, b, m, n, params);
  dispatch_float(c.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* cp = static_cast<T*>(c.raw());
    const T* pp = static_cast<const T*>(pre.raw());
    parallel_for(ctx, m, n, [&](std::int64_t r) {
      for (std::int64_t j = 0; j < n; ++j) {
        v[r * n + j] *= gelu_derivative(to_f(pp[r * n + j]), GeluApprox::kTanh);
        cp[r * n + j] = from_f<T>(v[r * n + j]);
      }
    });
  });
  if (!dbias.defined()) return;
  float* db = static_cast<float*>(dbias.raw());
  parallel_chunks(ctx, n, 64, [&](std::int64_t c0, std::int64_t c1) {
    std::vector<float> acc(static_cast<std::size_t>(c1 - c0), 0.0f);
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t j = c0; j < c1; ++j) acc[j - c0] += v[r * n + j];
    for (std::int64_t j = c0; j < c1; ++j) db[j] += acc[j - c0];
  });
}

}  // namespace bignlp::ops::cpu
