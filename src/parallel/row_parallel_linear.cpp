#include "bignlp/parallel/row_parallel_linear.h"

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::parallel {

RowParallelLinear::RowParallelLinear(comm::Communicator* tp, bool sequence_parallel)
    : tp_(tp), sequence_parallel_(sequence_parallel && tp != nullptr && tp->size() > 1) {}

void RowParallelLinear::forward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x,
                                const TensorView& y) const {
  if (tp_ == nullptr || tp_->size() == 1) {
    ops::gemm(ctx, x, w.weight, y, ops::GemmParams{false, true}, w.bias);
    return;
  }
  const TensorView bias = tp_->rank() == 0 ? w.bias : TensorView{};
  if (!sequence_parallel_) {
    ops::gemm(ctx, x, w.weight, y, ops::GemmParams{false, true}, bias);
    reduce_from_tp_region_forward(*tp_, y);
    return;
  }
  BIGNLP_CHECK(ctx.allocator != nullptr, "RowParallelLinear: ctx.allocator is required with sequence parallelism");
  Buffer partial(*ctx.allocator, y.dtype(), Shape{x.size(0), y.size(1)});
  ops::gemm(ctx, x, w.weight, partial, ops::GemmParams{false, true}, bias);
  reduce_scatter_to_sp_region_forward(*tp_, partial, y);
}

void RowParallelLinear::backward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x,
                                 const TensorView& dy, const TensorView& dx) const {
  Buffer gathered;
  TensorView dy_full = dy;
  if (sequence_parallel_) {
    BIGNLP_CHECK(ctx.allocator != nullptr, "RowParallelLinear: ctx.allocator is required with sequence parallelism");
    gathered = Buffer(*ctx.allocator, dy.dtype(), Shape{x.size(0), dy.size(1)});
    reduce_scatter_to_sp_region_backward(*tp_, dy, gathered);
    dy_full = gathered.view();
  }
  if (w.weight_grad.defined()) ops::gemm(ctx, dy_full, x, w.weight_grad, ops::GemmParams{true, false, 1.0f, 1.0f});
  // The bias gradient from all rows (gathered under SP), so it is complete on every TP rank.
  if (w.bias_grad.defined()) ops::bias_backward(ctx, dy_full, w.bias_grad);
  if (dx.defined()) ops::gemm(ctx, dy_full, w.weight, dx, ops::GemmParams{});
}

}  // namespace bignlp::parallel
