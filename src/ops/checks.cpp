#include <fmt/format.h>

#include "backend.h"
#include "bignlp/core/error.h"

namespace bignlp::ops::detail {

void throw_no_cuda(std::string_view op) {
  throw RuntimeError(fmt::format(
      "op {} has no CUDA implementation in this build (BIGNLP_WITH_CUDA={}); run it on CPU tensors", op,
#if defined(BIGNLP_WITH_CUDA)
      1
#else
      0
#endif
      ));
}

void check_on_device(const OpContext& ctx, std::string_view op, std::string_view name, const TensorView& t) {
  if (!t.defined()) throw RuntimeError(fmt::format("{}: tensor '{}' is required but empty", op, name));
  if (!(t.device() == ctx.device))
    throw RuntimeError(fmt::format("{}: tensor '{}' is on {}, the op runs on {}", op, name, t.device().to_string(),
                                   ctx.device.to_string()));
}

void check_dtype(std::string_view op, std::string_view name, const TensorView& t,
                 std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t.dtype() == d) return;
  std::string names;
  for (DType d : allowed) names += fmt::format("{}{}", names.empty() ? "" : "|", dtype_name(d));
  throw RuntimeError(fmt::format("{}: tensor '{}' has dtype {}, expected {}", op, name, dtype_name(t.dtype()), names));
}

void check_float(std::string_view op, std::string_view name, const TensorView& t) {
  check_dtype(op, name, t, {DType::kF32, DType::kBF16, DType::kF16});
}

void check_shape(std::string_view op, std::string_view name, const TensorView& t, const Shape& shape) {
  if (!(t.shape() == shape))
    throw RuntimeError(
        fmt::format("{}: tensor '{}' has shape {}, expected {}", op, name, t.shape().to_string(), shape.to_string()));
}

void check_contiguous(std::string_view op, std::string_view name, const TensorView& t) {
  if (!t.is_contiguous())
    throw RuntimeError(fmt::format("{}: tensor '{}' must be contiguous, got {}", op, name, t.to_string()));
}

void check_rank(std::string_view op, std::string_view name, const TensorView& t, int rank) {
  if (t.rank() != rank)
    throw RuntimeError(fmt::format("{}: tensor '{}' must have rank {}, got {}", op, name, rank, t.to_string()));
}

}  // namespace bignlp::ops::detail
