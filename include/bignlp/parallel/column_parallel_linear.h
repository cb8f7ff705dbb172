// ColumnParallelLinear: Y = X A^T + b with A (out, in) split along out; TP rank r holds rows
// [r*out/t, (r+1)*out/t) of A and b, and produces that slice of Y's columns (not gathered).
//
// Built from the mappings (mappings.h):
//   without SP  forward: copy_to_tp_region (identity), local GEMM          x (N, in)   -> y (N, out/t)
//               backward: dX = dY A_r, all-reduce over TP (copy_to's backward), optionally async and
//               overlapped with dA_r += dY^T X (Megatron async_tensor_model_parallel_allreduce)
//   with SP     forward: gather_from_sp_region (all-gather rows), local GEMM    x (N/t, in) -> y (N, out/t)
//               backward: re-gather X for the weight gradient, dX reduce-scattered to (N/t, in)
//                         (gather_from_sp_region's backward), overlapped with the weight gradient
// The same layer computes the logits from the tied word embedding (weight = the vocabulary shard,
// no bias). With one rank (tp == null) it is exactly a plain linear layer.
#pragma once

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/parallel/linear_weights.h"

namespace bignlp::parallel {

class ColumnParallelLinear {
 public:
  /// tp: the tensor-parallel communicator, or null for one rank. sequence_parallel needs tp.
  ColumnParallelLinear(comm::Communicator* tp, bool sequence_parallel, bool async_allreduce);

  /// y (N, out_local) = X A_r^T + b_r, where X is x (N, in), or the all-gather of x (N/t, in) with SP.
  void forward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x, const TensorView& y) const;
  /// dA_r, db_r += (fp32); dx (x's shape) written when given. x is the forward's input (local rows
  /// with SP: it is gathered again here rather than kept).
  void backward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x, const TensorView& dy,
                const TensorView& dx) const;

  bool sequence_parallel() const { return sequence_parallel_; }

 private:
  comm::Communicator* tp_;
  bool sequence_parallel_;
  bool async_allreduce_;
};

}  // namespace bignlp::parallel
