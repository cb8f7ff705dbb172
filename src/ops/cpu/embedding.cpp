// CPU embedding lookup and its scatter-add backward. The backward splits columns over threads and
// walks tokens in order, so repeated ids accumulate in a fixed order.
#include <vector>

#include "../backend.h"
#include "cpu_common.h"

namespace bignlp::ops::cpu {

void embedding_forward(const OpContext& ctx, const TensorView& ids, const TensorView& table, const TensorView& out,
                       std::int64_t vocab_start, bool accumulate) {
  const std::int64_t n = ids.size(0), c = table.size(1), v = table.size(0);
  const std::int32_t* id = static_cast<const std::int32_t*>(ids.raw());
  dispatch_float(table.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* w = static_cast<const T*>(table.raw());
    T* o = static_cast<T*>(out.raw());
    parallel_for(ctx, n, c, [&](std::int64_t r) {
      const std::int64_t row = static_cast<std::int64_t>(id[r]) - vocab_start;
      const bool owned = row >= 0 && row < v;
      for (std::int64_t j = 0; j < c; ++j) {
        const float e = owned ? to_f(w[row * c + j]) : 0.0f;
        o[r * c + j] = from_f<T>(accumulate ? to_f(o[r * c + j]) + e : e);
      }
    });
  });
}

void embedding_backward(const OpContext& ctx, const TensorView& ids, const TensorView& dout, const TensorView& dtable,
                        std::int64_t vocab_start) {
  const std::int64_t n = ids.size(0), c = dtable.size(1), v = dtable.size(0);
  const std::int32_t* id = static_cast<const std::int32_t*>(ids.raw());
  float* dw = static_cast<float*>(dtable.raw());
  dispatch_float(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(dout.raw());
    parallel_chunks(ctx, c, 64, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int64_t row = static_cast<std::int64_t>(id[r]) - vocab_start;
        if (row < 0 || row >= v) continue;
        for (std::int64_t j = c0; j < c1; ++j) dw[row * c + j] += to_f(g[r * c + j]);
      }
    });
  });
}

}  // namespace bignlp::ops::cpu
