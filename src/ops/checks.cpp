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

void check_elementwise(const OpContext& ctx, std::string_view op, const TensorView& x, const TensorView& y) {
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "y", y);
  check_float(op, "x", x);
  check_dtype(op, "y", y, {x.dtype()});
  check_shape(op, "y", y, x.shape());
  check_contiguous(op, "x", x);
  check_contiguous(op, "y", y);
}

void check_norm_backward(const OpContext& ctx, std::string_view op, const TensorView& x, const TensorView& weight,
                         const TensorView& dy, const TensorView& dx, const TensorView& dweight) {
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "weight", weight);
  check_on_device(ctx, op, "dy", dy);
  check_on_device(ctx, op, "dx", dx);
  check_on_device(ctx, op, "dweight", dweight);
  check_rank(op, "x", x, 2);
  check_float(op, "x", x);
  for (const auto* t : {&x, &dy, &dx}) check_contiguous(op, "x/dy/dx", *t);
  check_dtype(op, "weight", weight, {x.dtype()});
  check_dtype(op, "dy", dy, {x.dtype()});
  check_dtype(op, "dx", dx, {x.dtype()});
  check_shape(op, "dy", dy, x.shape());
  check_shape(op, "dx", dx, x.shape());
  const Shape vec{x.size(1)};
  check_shape(op, "weight", weight, vec);
  check_shape(op, "dweight", dweight, vec);
  check_dtype(op, "dweight", dweight, {DType::kF32});
}

void check_elementwise_backward(const OpContext& ctx, std::string_view op, const TensorView& x, const TensorView& dy,
                                const TensorView& dx) {
  check_on_device(ctx, op, "x", x);
  check_on_device(ctx, op, "dy", dy);
  check_on_device(ctx, op, "dx", dx);
  check_float(op, "x", x);
  check_dtype(op, "dy", dy, {x.dtype()});
  check_dtype(op, "dx", dx, {x.dtype()});
  check_shape(op, "dy", dy, x.shape());
  check_shape(op, "dx", dx, x.shape());
  for (const auto* t : {&x, &dy, &dx}) check_contiguous(op, "x/dy/dx", *t);
}

}  // namespace bignlp::ops::detail
