// CPU GeLU, both forms, with analytic derivatives (formulas in gelu_math.h).
#include "../backend.h"
#include "cpu_common.h"
#include "gelu_math.h"

namespace bignlp::ops::cpu {

void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    T* yp = static_cast<T*>(y.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) yp[i] = from_f<T>(gelu_value(to_f(xp[i]), approx));
    });
  });
}

void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* gp = static_cast<const T*>(dy.raw());
    T* dxp = static_cast<T*>(dx.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) dxp[i] = from_f<T>(gelu_derivative(to_f(xp[i]), approx) * to_f(gp[i]));
    });
  });
}

}  // namespace bignlp::ops::cpu
