#include "bignlp/parallel/column_parallel_linear.h"

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::parallel {

ColumnParallelLinear::ColumnParallelLinear(comm::Communicator* tp, bool sequence_parallel, bool async_allreduce)
    : tp_(tp), sequence_parallel_(sequence_parallel && tp != nullptr && tp->size() > 1), async_allreduce_(async_allreduce) {}

void ColumnParallelLinear::forward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x,
                                   const TensorView& y) const {
  if (!sequence_parallel_) {
    ops::gemm(ctx, x, w.weight, y, ops::GemmParams{false, true}, w.bias);
    return;
  }
  BIGNLP_CHECK(ctx.allocator != nullptr, "ColumnParallelLinear: ctx.allocator is required with sequence parallelism");
  Buffer total(*ctx.allocator, x.dtype(), Shape{x.size(0) * tp_->size(), x.size(1)});
  gather_from_sp_region_forward(*tp_, x, total);
  ops::gemm(ctx, total, w.weight, y, ops::GemmParams{false, true}, w.bias);
}

void ColumnParallelLinear::backward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x,
                                    const TensorView& dy, const TensorView& dx) const {
  Buffer total, dx_full;
  TensorView input = x;
  if (sequence_parallel_) {
    BIGNLP_CHECK(ctx.allocator != nullptr, "ColumnParallelLinear: ctx.allocator is required with sequence parallelism");
    total = Buffer(*ctx.allocator, x.dtype(), Shape{x.size(0) * tp_->size(), x.size(1)});
    gather_from_sp_region_forward(*tp_, x, total);
    input = total.view();
  }
  WorkPtr pending;
  if (dx.defined()) {
    if (sequence_parallel_) {
      dx_full = Buffer(*ctx.allocator, dx.dtype(), Shape{input.size(0), input.size(1)});
      ops::gemm(ctx, dy, w.weight, dx_full, ops::GemmParams{});
      pending = gather_from_sp_region_backward_async(*tp_, dx_full, dx);
    } else {
      ops::gemm(ctx, dy, w.weight, dx, ops::GemmParams{});
      if (tp_ != nullptr && tp_->size() > 1) {
        if (async_allreduce_) {
          pending = copy_to_tp_region_backward_async(*tp_, dx);
        } else {
          copy_to_tp_region_backward(*tp_, dx);
        }
      }
    }
  }
  // The weight gradient runs while the input-gradient reduction is in flight.
  if (w.weight_grad.defined()) ops::gemm(ctx, dy, input, w.weight_grad, ops::GemmParams{true, false, 1.0f, 1.0f});
  if (w.bias_grad.defined()) ops::bias_backward(ctx, dy, w.bias_grad);
  if (pending) pending->wait(tp_->timeout());
}

}  // namespace bignlp::parallel
