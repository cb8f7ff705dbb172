// CPU dropout from the Philox stream (ops/philox.h): element i uses index first_index + i, so a
// shard of a tensor (first_index = its offset) draws exactly the elements of the full tensor.
#include <vector>

#include "../backend.h"
#include "bignlp/ops/philox.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void dropout_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, const DropoutParams& params,
                     const TensorView& residual) {
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw());
    const T* rp = residual.defined() ? static_cast<const T*>(residual.raw()) : nullptr;
    T* yp = static_cast<T*>(y.raw());
    parallel_chunks(ctx, x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      std::vector<float> mult(static_cast<std::size_t>(params.p > 0.0f ? i1 - i0 : 0));
      if (params.p > 0.0f)
        dropout_multipliers(params.seed, params.offset, params.first_index + static_cast<std::uint64_t>(i0), i1 - i0,
                            params.p, mult.data());
      for (std::int64_t i = i0; i < i1; ++i) {
        float v = to_f(xp[i]);
        if (params.p > 0.0f) v *= mult[i - i0];
        if (rp) v += to_f(rp[i]);
        yp[i] = from_f<T>(v);
      }
    });
  });
}

void dropout_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dx, const DropoutParams& params,
                      bool accumulate) {
  dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* gp = static_cast<const T*>(dy.raw());
    T* dxp = static_cast<T*>(dx.raw());
    parallel_chunks(ctx, dy.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      std::vector<float> mult(static_cast<std::size_t>(params.p > 0.0f ? i1 - i0 : 0));
      if (params.p > 0.0f)
        dropout_multipliers(params.seed, params.offset, params.first_index + static_cast<std::uint64_t>(i0), i1 - i0,
                            params.p, mult.data());
      for (std::int64_t i = i0; i < i1; ++i) {
        float v = to_f(gp[i]);
        if (params.p > 0.0f) v *= mult[i - i0];
        if (accumulate) v += to_f(dxp[i]);
        dxp[i] = from_f<T>(v);
      }
    });
  });
}

}  // namespace bignlp::ops::cpu
