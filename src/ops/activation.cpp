#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_ACTIVATION
#define BIGNLP_OPS_CUDA_ACTIVATION 0
#endif

namespace bignlp::ops {

using namespace detail;

namespace {

/// A gated-activation operand: (N, F) of dtype `dtype`, unit inner stride (any leading stride).
void check_gated_operand(const OpContext& ctx, std::string_view op, std::string_view name, const TensorView& t,
                         const Shape& shape, DType dtype) {
  check_on_device(ctx, op, name, t);
  check_dtype(op, name, t, {dtype});
  check_shape(op, name, t, shape);
  BIGNLP_CHECK(t.has_unit_inner_stride() && t.stride(0) >= t.size(1),
               "{}: tensor '{}' needs unit stride in the last dimension and rows that do not overlap, got {}", op,
               name, t.to_string());
}

}  // namespace

void activation_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, Activation act) {
  check_elementwise(ctx, "activation_forward", x, y);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ACTIVATION, activation_forward, ctx, x, y, act);
}

void activation_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                         Activation act) {
  check_elementwise_backward(ctx, "activation_backward", x, dy, dx);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ACTIVATION, activation_backward, ctx, x, dy, dx, act);
}

void gated_activation_forward(const OpContext& ctx, const TensorView& gate, const TensorView& up, const TensorView& y,
                              Activation act) {
  constexpr std::string_view op = "gated_activation_forward";
  check_on_device(ctx, op, "gate", gate);
  check_rank(op, "gate", gate, 2);
  check_float(op, "gate", gate);
  check_gated_operand(ctx, op, "gate", gate, gate.shape(), gate.dtype());
  check_gated_operand(ctx, op, "up", up, gate.shape(), gate.dtype());
  check_on_device(ctx, op, "y", y);
  check_dtype(op, "y", y, {gate.dtype()});
  check_shape(op, "y", y, gate.shape());
  check_contiguous(op, "y", y);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ACTIVATION, gated_activation_forward, ctx, gate, up, y, act);
}

void gated_activation_backward(const OpContext& ctx, const TensorView& gate, const TensorView& up,
                               const TensorView& dy, const TensorView& dgate, const TensorView& dup, Activation act) {
  constexpr std::string_view op = "gated_activation_backward";
  check_on_device(ctx, op, "gate", gate);
  check_rank(op, "gate", gate, 2);
  check_float(op, "gate", gate);
  check_gated_operand(ctx, op, "gate", gate, gate.shape(), gate.dtype());
  check_gated_operand(ctx, op, "up", up, gate.shape(), gate.dtype());
  check_gated_operand(ctx, op, "dgate", dgate, gate.shape(), gate.dtype());
  check_gated_operand(ctx, op, "dup", dup, gate.shape(), gate.dtype());
  check_on_device(ctx, op, "dy", dy);
  check_dtype(op, "dy", dy, {gate.dtype()});
  check_shape(op, "dy", dy, gate.shape());
  check_contiguous(op, "dy", dy);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ACTIVATION, gated_activation_backward, ctx, gate, up, dy, dgate, dup, act);
}

}  // namespace bignlp::ops
