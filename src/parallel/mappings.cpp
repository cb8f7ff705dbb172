#include "bignlp/parallel/mappings.h"

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::parallel {

namespace {

void check_2d(const char* op, const char* what, const TensorView& t) {
  BIGNLP_CHECK(t.rank() == 2 && t.is_contiguous(), "{}: {} must be a contiguous (N, C) matrix, got {}", op, what,
               t.to_string());
}

Allocator& temp_allocator(const ops::OpContext& ctx, const char* op) {
  BIGNLP_CHECK(ctx.allocator != nullptr, "{}: ctx.allocator is required for the temporary", op);
  return *ctx.allocator;
}

void check_split(const char* op, const TensorView& full, const TensorView& part, int dim, int t) {
  check_2d(op, "the full tensor", full);
  check_2d(op, "the shard", part);
  const int other = 1 - dim;
  BIGNLP_CHECK(full.size(other) == part.size(other) && full.size(dim) == part.size(dim) * t && full.dtype() == part.dtype(),
               "{}: full {} and shard {} do not match a split of dim {} into {}", op, full.to_string(), part.to_string(),
               dim, t);
}

}  // namespace

void copy_to_tp_region_backward(Communicator& tp, const TensorView& grad) { tp.all_reduce(grad, comm::ReduceOp::kSum); }

WorkPtr copy_to_tp_region_backward_async(Communicator& tp, const TensorView& grad) {
  return tp.all_reduce_async(grad, comm::ReduceOp::kSum);
}

void reduce_from_tp_region_forward(Communicator& tp, const TensorView& x) { tp.all_reduce(x, comm::ReduceOp::kSum); }

void scatter_to_tp_region_forward(const ops::OpContext& ctx, Communicator& tp, const TensorView& x, const TensorView& out) {
  check_split("scatter_to_tp_region", x, out, 1, tp.size());
  const std::int64_t c = out.size(1);
  ops::copy(ctx, x.slice(1, tp.rank() * c, c), out);
}

void gather_from_tp_region_forward(const ops::OpContext& ctx, Communicator& tp, const TensorView& x, const TensorView& out) {
  check_split("gather_from_tp_region", out, x, 1, tp.size());
  const std::int64_t n = x.size(0), c = x.size(1);
  const int t = tp.size();
  if (t == 1) {
    ops::copy(ctx, x, out);
    return;
  }
  // Gather rank-major (t, N, c), then interleave into (N, t, c) = (N, t*c).
  Buffer gathered(temp_allocator(ctx, "gather_from_tp_region"), x.dtype(), Shape{t, n, c});
  tp.all_gather(x, gathered);
  ops::copy(ctx, gathered.view().transpose(0, 1), out.reshape(Shape{n, t, c}));
}

void scatter_to_tp_region_backward(const ops::OpContext& ctx, Communicator& tp, const TensorView& dout,
                                   const TensorView& dx) {
  gather_from_tp_region_forward(ctx, tp, dout, dx);
}

void gather_from_tp_region_backward(const ops::OpContext& ctx, Communicator& tp, const TensorView& dout,
                                    const TensorView& dx) {
  scatter_to_tp_region_forward(ctx, tp, dout, dx);
}

std::int64_t sp_row_offset(const Communicator& tp, std::int64_t rows) {
  BIGNLP_CHECK(rows % tp.size() == 0, "sequence parallelism: {} rows do not split into {} TP ranks (the sequence "
               "length must be divisible by tensor_model_parallel_size)", rows, tp.size());
  return tp.rank() * (rows / tp.size());
}

void scatter_to_sp_region_forward(const ops::OpContext& ctx, Communicator& tp, const TensorView& x, const TensorView& out) {
  check_split("scatter_to_sp_region", x, out, 0, tp.size());
  ops::copy(ctx, x.slice(0, sp_row_offset(tp, x.size(0)), out.size(0)), out);
}

void scatter_to_sp_region_backward(Communicator& tp, const TensorView& dout, const TensorView& dx) {
  check_split("scatter_to_sp_region backward", dx, dout, 0, tp.size());
  tp.all_gather(dout, dx);
}

void gather_from_sp_region_forward(Communicator& tp, const TensorView& x, const TensorView& out) {
  check_split("gather_from_sp_region", out, x, 0, tp.size());
  tp.all_gather(x, out);
}

void gather_from_sp_region_backward(Communicator& tp, const TensorView& dout, const TensorView& dx) {
  gather_from_sp_region_backward_async(tp, dout, dx)->wait(tp.timeout());
}

WorkPtr gather_from_sp_region_backward_async(Communicator& tp, const TensorView& dout, const TensorView& dx) {
  check_split("gather_from_sp_region backward", dout, dx, 0, tp.size());
  return tp.reduce_scatter_async(dout, dx, comm::ReduceOp::kSum);
}

void reduce_scatter_to_sp_region_forward(Communicator& tp, const TensorView& x, const TensorView& out) {
  check_split("reduce_scatter_to_sp_region", x, out, 0, tp.size());
  tp.reduce_scatter(x, out, comm::ReduceOp::kSum);
}

void reduce_scatter_to_sp_region_backward(Communicator& tp, const TensorView& dout, const TensorView& dx) {
  check_split("reduce_scatter_to_sp_region backward", dx, dout, 0, tp.size());
  tp.all_gather(dout, dx);
}

}  // namespace bignlp::parallel
