// RowParallelLinear: Y = X A^T + b with A (out, in) split along in; TP rank r holds columns
// [r*in/t, (r+1)*in/t) of A and multiplies the matching slice of X's columns (input_is_parallel).
//
//   without SP  forward: local GEMM, reduce_from_tp_region (all-reduce)      x (N, in/t) -> y (N, out)
//               backward: identity, dX_r = dY A_r, dA_r += dY^T X_r
//   with SP     forward: local GEMM, reduce_scatter_to_sp_region              x (N, in/t) -> y (N/t, out)
//               backward: all-gather dY rows, then as above
// The bias is replicated (not split) and added once: TP rank 0 folds it into its partial sum before
// the reduction, which equals adding it after. Its gradient is the column sum of dY over all rows:
// identical on all TP ranks. (Megatron sums only the local rows under SP and all-reduces the bias
// gradient over TP afterwards; summing the already gathered dY gives the same value without that
// extra all-reduce. LayerNorm parameters under SP still need it, see the model.)
#pragma once

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/parallel/linear_weights.h"

namespace bignlp::parallel {

class RowParallelLinear {
 public:
  /// tp: the tensor-parallel communicator, or null for one rank. sequence_parallel needs tp.
  RowParallelLinear(comm::Communicator* tp, bool sequence_parallel);

  /// y (N, out), or (N/t, out) with SP, from x (N, in_local).
  void forward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x, const TensorView& y) const;
  /// dA_r, db += (fp32); dx (N, in_local) written when given; dy has y's shape.
  void backward(const ops::OpContext& ctx, const LinearWeights& w, const TensorView& x, const TensorView& dy,
                const TensorView& dx) const;

  bool sequence_parallel() const { return sequence_parallel_; }

 private:
  comm::Communicator* tp_;
  bool sequence_parallel_;
};

}  // namespace bignlp::parallel
