// VocabParallelCrossEntropy: per-token cross entropy over logits split along the vocabulary.
//
// Logits (N, Vp/t) on each TP rank (never gathered); targets (N) are global token ids. Megatron's
// algorithm (megatron-model.md 4.7) all-reduces the max logit (MAX), the target logit (SUM) and the
// sum of exponentials (SUM). The op table gives each shard's log-sum-exp lse_r and its target term,
// so the same three reductions run on per-token scalars:
//   m   = max_r lse_r                              all-reduce MAX
//   S   = sum_r exp(lse_r - m)                     all-reduce SUM      lse = m + log S
//   z_y = sum_r (lse_r - loss_r)                   all-reduce SUM      (0 off the owning rank)
//   loss = lse - z_y
// which is the full-vocabulary loss, as stable as Megatron's (the max is subtracted before
// exponentiating). Backward: softmax = exp(logit - lse) on each shard, minus 1 at the target on its
// owning rank (ops::cross_entropy_backward with vocab_start), times the per-token upstream grad.
// The per-token scalars (N) are combined on the host. Label smoothing is not handled (GPT uses none).
#pragma once

#include <cstdint>

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::parallel {

class VocabParallelCrossEntropy {
 public:
  /// vocab_start: first vocabulary id of this rank's logits shard; tp null for one rank.
  VocabParallelCrossEntropy(comm::Communicator* tp, std::int64_t vocab_start);

  /// losses (N) fp32 = full-vocabulary cross entropy; lse (N) fp32 = full log-sum-exp (kept for backward).
  void forward(const ops::OpContext& ctx, const TensorView& logits, const TensorView& targets, const TensorView& losses,
               const TensorView& lse) const;
  /// dlogits (N, Vp/t) = (softmax - onehot) * dlosses; may alias logits.
  void backward(const ops::OpContext& ctx, const TensorView& logits, const TensorView& targets, const TensorView& lse,
                const TensorView& dlosses, const TensorView& dlogits) const;

 private:
  comm::Communicator* tp_;
  std::int64_t vocab_start_;
};

}  // namespace bignlp::parallel
