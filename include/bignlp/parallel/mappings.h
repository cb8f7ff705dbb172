// The conjugate mappings between tensor-parallel regions (Megatron mappings.py), each forward next
// to its backward. Parallel layers are built from these; nothing else in the engine talks to the
// TP communicator directly.
//
//   mapping                         forward                          backward
//   copy_to_tp_region               identity                         all-reduce(sum)
//   reduce_from_tp_region           all-reduce(sum)                  identity
//   scatter_to_tp_region            keep column chunk r (last dim)   all-gather last dim
//   gather_from_tp_region           all-gather last dim              keep column chunk r
//   scatter_to_sp_region            keep row chunk r (dim 0)         all-gather dim 0
//   gather_from_sp_region           all-gather dim 0                 reduce-scatter dim 0
//   reduce_scatter_to_sp_region     reduce-scatter dim 0             all-gather dim 0
//
// Shapes: activations are 2-D (N, C) views of sequence-first (T, B, C) tensors, so row chunk r of
// N = T*B rows is the sequence slice [r*T/t, (r+1)*T/t) (T must divide by t). "r" is the TP rank
// and t the TP size. Identity directions are listed for completeness (no function). All tensors
// contiguous; functions that need a temporary take it from ctx.allocator.
#pragma once

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::parallel {

using comm::Communicator;
using comm::WorkPtr;

// copy_to_tp_region --------------------------------------------------------------------------
/// Backward of copy_to_tp_region: the input gradient (N, C) summed over TP ranks, in place.
void copy_to_tp_region_backward(Communicator& tp, const TensorView& grad);
/// The same, asynchronously (overlap with the weight-gradient GEMM); wait before using `grad`.
WorkPtr copy_to_tp_region_backward_async(Communicator& tp, const TensorView& grad);

// reduce_from_tp_region ----------------------------------------------------------------------
/// Forward of reduce_from_tp_region: the partial sums (N, C) summed over TP ranks, in place.
void reduce_from_tp_region_forward(Communicator& tp, const TensorView& x);

// scatter_to_tp_region / gather_from_tp_region (last dimension) ------------------------------
/// out (N, C/t) = x (N, C)[:, r*C/t : (r+1)*C/t].
void scatter_to_tp_region_forward(const ops::OpContext& ctx, Communicator& tp, const TensorView& x, const TensorView& out);
/// dx (N, C) = all-gather over ranks of dout (N, C/t), concatenated along the last dim.
void scatter_to_tp_region_backward(const ops::OpContext& ctx, Communicator& tp, const TensorView& dout,
                                   const TensorView& dx);
/// out (N, C) = all-gather of x (N, C/t) along the last dim.
void gather_from_tp_region_forward(const ops::OpContext& ctx, Communicator& tp, const TensorView& x, const TensorView& out);
/// dx (N, C/t) = dout (N, C)[:, r*C/t : (r+1)*C/t].
void gather_from_tp_region_backward(const ops::OpContext& ctx, Communicator& tp, const TensorView& dout,
                                    const TensorView& dx);

// sequence-parallel regions (dim 0) ----------------------------------------------------------
/// out (N/t, C) = rows [r*N/t, (r+1)*N/t) of x (N, C).
void scatter_to_sp_region_forward(const ops::OpContext& ctx, Communicator& tp, const TensorView& x, const TensorView& out);
/// dx (N, C) = all-gather of dout (N/t, C).
void scatter_to_sp_region_backward(Communicator& tp, const TensorView& dout, const TensorView& dx);
/// out (N, C) = all-gather of x (N/t, C).
void gather_from_sp_region_forward(Communicator& tp, const TensorView& x, const TensorView& out);
/// dx (N/t, C) = reduce-scatter(sum) of dout (N, C).
void gather_from_sp_region_backward(Communicator& tp, const TensorView& dout, const TensorView& dx);
WorkPtr gather_from_sp_region_backward_async(Communicator& tp, const TensorView& dout, const TensorView& dx);
/// out (N/t, C) = reduce-scatter(sum) of x (N, C).
void reduce_scatter_to_sp_region_forward(Communicator& tp, const TensorView& x, const TensorView& out);
/// dx (N, C) = all-gather of dout (N/t, C).
void reduce_scatter_to_sp_region_backward(Communicator& tp, const TensorView& dout, const TensorView& dx);

/// First row of TP rank r's sequence shard: r * N / t (checks that t divides N).
std::int64_t sp_row_offset(const Communicator& tp, std::int64_t rows);

}  // namespace bignlp::parallel
