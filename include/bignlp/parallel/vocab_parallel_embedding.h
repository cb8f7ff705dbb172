// VocabParallelEmbedding: the word embedding (Vp, C) split along the vocabulary over TP ranks.
//
// TP rank r holds rows [r*Vp/t, (r+1)*Vp/t) (Vp is padded to a multiple of t). Forward (Megatron
// VocabParallelEmbedding): every rank looks up its ids that fall in its shard, leaving zero rows for
// the others, and the partial rows are summed over TP (reduce_from_tp_region); exactly one rank
// contributes each row, so the sum is exact in every dtype. Backward is the all-reduce's identity:
// each rank scatters the (replicated) output gradient into its own rows only.
#pragma once

#include <cstdint>

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::parallel {

class VocabParallelEmbedding {
 public:
  /// padded_vocab: Vp of the full table; tp null for one rank.
  VocabParallelEmbedding(comm::Communicator* tp, std::int64_t padded_vocab);

  /// First vocabulary row of this rank's shard.
  std::int64_t vocab_start() const { return vocab_start_; }
  /// Rows of the shard: Vp / t.
  std::int64_t shard_rows() const { return shard_rows_; }

  /// out (N, C) = full-vocabulary rows of ids (N) int32, from table (Vp/t, C).
  void forward(const ops::OpContext& ctx, const TensorView& ids, const TensorView& table, const TensorView& out) const;
  /// dtable (Vp/t, C) fp32 += the rows of dout (N, C) whose ids fall in the shard.
  void backward(const ops::OpContext& ctx, const TensorView& ids, const TensorView& dout, const TensorView& dtable) const;

 private:
  comm::Communicator* tp_;
  std::int64_t vocab_start_ = 0;
  std::int64_t shard_rows_ = 0;
};

}  // namespace bignlp::parallel
