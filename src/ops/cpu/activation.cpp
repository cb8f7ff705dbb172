// CPU activations, plain and gated (formulas in activation_math.h). Elementwise: each element is
// read before it is written, which is what makes the documented aliasing safe.
//   gated:  y = act(gate) * up;  dgate = act'(gate) * up * dy,  dup = act(gate) * dy
#include "../backend.h"
#include "activation_math.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void activation_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, Activation act) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    T* yp = static_cast<T*>(y.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) yp[i] = from_f<T>(activation_value(to_f(xp[i]), act));
    });
  });
}

void activation_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                         Activation act) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* gp = static_cast<const T*>(dy.raw());
    T* dxp = static_cast<T*>(dx.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) dxp[i] = from_f<T>(activation_derivative(to_f(xp[i]), act) * to_f(gp[i]));
    });
  });
}

void gated_activation_forward(const OpContext& ctx, const TensorView& gate, const TensorView& up, const TensorView& y,
                              Activation act) {
  const std::int64_t n = gate.size(0), f = gate.size(1);
  const std::int64_t lg = gate.stride(0), lu = up.stride(0);
  dispatch_float(gate.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* gp = static_cast<const T*>(gate.raw());
    const T* up_p = static_cast<const T*>(up.raw());
    T* yp = static_cast<T*>(y.raw());
    parallel_for(ctx, n, 8 * f, [&](std::int64_t r) {
      for (std::int64_t j = 0; j < f; ++j)
        yp[r * f + j] = from_f<T>(activation_value(to_f(gp[r * lg + j]), act) * to_f(up_p[r * lu + j]));
    });
  });
}

void gated_activation_backward(const OpContext& ctx, const TensorView& gate, const TensorView& up,
                               const TensorView& dy, const TensorView& dgate, const TensorView& dup, Activation act) {
  const std::int64_t n = gate.size(0), f = gate.size(1);
  const std::int64_t lg = gate.stride(0), lu = up.stride(0), ldg = dgate.stride(0), ldu = dup.stride(0);
  dispatch_float(gate.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* gp = static_cast<const T*>(gate.raw());
    const T* up_p = static_cast<const T*>(up.raw());
    const T* dyp = static_cast<const T*>(dy.raw());
    T* dgp = static_cast<T*>(dgate.raw());
    T* dup_p = static_cast<T*>(dup.raw());
    parallel_for(ctx, n, 8 * f, [&](std::int64_t r) {
      for (std::int64_t j = 0; j < f; ++j) {
        const float g = to_f(gp[r * lg + j]), u = to_f(up_p[r * lu + j]), d = to_f(dyp[r * f + j]);
        dgp[r * ldg + j] = from_f<T>(activation_derivative(g, act) * u * d);
        dup_p[r * ldu + j] = from_f<T>(activation_value(g, act) * d);
      }
    });
  });
}

}  // namespace bignlp::ops::cpu
