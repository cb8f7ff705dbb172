// Internal: the per-device implementations behind the op table, and the argument checks shared by
// all of them.
//
// src/ops/<op>.cpp checks arguments once and calls cpu::<op> or (device CUDA, builds with
// BIGNLP_WITH_CUDA where src/ops/cuda/<op>.cpp exists; CMake then defines BIGNLP_OPS_CUDA_<OP>=1)
// cuda::<op>. Adding the CUDA implementation of an existing op therefore means writing
// src/ops/cuda/<op>.cpp (+ kernels/<op>.cu) and its parity test; nothing here changes.
#pragma once

#include <initializer_list>
#include <string_view>

#include "bignlp/ops/ops.h"

namespace bignlp::ops {

namespace cpu {
#include "backend_ops.inc"
}  // namespace cpu

namespace cuda {
#include "backend_ops.inc"
}  // namespace cuda

namespace detail {

/// Throws RuntimeError: `op` has no CUDA implementation in this build.
[[noreturn]] void throw_no_cuda(std::string_view op);

/// `t` is defined and lives on ctx.device.
void check_on_device(const OpContext& ctx, std::string_view op, std::string_view name, const TensorView& t);
/// dtype of `t` is one of `allowed`.
void check_dtype(std::string_view op, std::string_view name, const TensorView& t, std::initializer_list<DType> allowed);
/// `t` is fp32, bf16 or fp16.
void check_float(std::string_view op, std::string_view name, const TensorView& t);
/// `t` has exactly `shape`.
void check_shape(std::string_view op, std::string_view name, const TensorView& t, const Shape& shape);
/// `t` is contiguous.
void check_contiguous(std::string_view op, std::string_view name, const TensorView& t);
/// `t` has rank `rank`.
void check_rank(std::string_view op, std::string_view name, const TensorView& t, int rank);
/// An elementwise map y = f(x): both on ctx.device, contiguous, x float, y of x's dtype and shape.
void check_elementwise(const OpContext& ctx, std::string_view op, const TensorView& x, const TensorView& y);
/// A row normalization's backward: x, dy, dx (N, C) contiguous of x's float dtype, weight (C) of
/// x's dtype, dweight (C) fp32, all on ctx.device.
void check_norm_backward(const OpContext& ctx, std::string_view op, const TensorView& x, const TensorView& weight,
                         const TensorView& dy, const TensorView& dx, const TensorView& dweight);
/// Its backward dx = f'(x) * dy: x, dy, dx on ctx.device, contiguous, of x's (float) dtype and shape.
void check_elementwise_backward(const OpContext& ctx, std::string_view op, const TensorView& x, const TensorView& dy,
                                const TensorView& dx);

}  // namespace detail
}  // namespace bignlp::ops

// BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_<OP>, fn, ctx, args...): returns cuda::fn(ctx, args...) for a
// CUDA context when that implementation is compiled in, throws when it is not, and otherwise runs
// cpu::fn(ctx, args...). The first argument is a macro that expands to 0 or 1.
#define BIGNLP_OPS_CAT_(a, b) a##b
#define BIGNLP_OPS_CAT(a, b) BIGNLP_OPS_CAT_(a, b)
#define BIGNLP_OPS_CUDA_CALL_1(fn, ...) return ::bignlp::ops::cuda::fn(__VA_ARGS__)
#define BIGNLP_OPS_CUDA_CALL_0(fn, ...) ::bignlp::ops::detail::throw_no_cuda(#fn)
#define BIGNLP_OPS_DISPATCH(available, fn, ctx, ...)                         \
  do {                                                                       \
    if ((ctx).device.is_cuda()) {                                            \
      BIGNLP_OPS_CAT(BIGNLP_OPS_CUDA_CALL_, available)(fn, ctx, __VA_ARGS__); \
    }                                                                        \
    return ::bignlp::ops::cpu::fn(ctx, __VA_ARGS__);                         \
  } while (0)
