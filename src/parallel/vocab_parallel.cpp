#include <cmath>
#include <vector>

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/parallel/vocab_parallel_cross_entropy.h"
#include "bignlp/parallel/vocab_parallel_embedding.h"

namespace bignlp::parallel {

namespace {
bool multi(const comm::Communicator* tp) { return tp != nullptr && tp->size() > 1; }
}  // namespace

VocabParallelEmbedding::VocabParallelEmbedding(comm::Communicator* tp, std::int64_t padded_vocab) : tp_(tp) {
  const int t = multi(tp) ? tp->size() : 1;
  BIGNLP_CHECK(padded_vocab % t == 0, "the padded vocabulary {} does not split into {} TP shards", padded_vocab, t);
  shard_rows_ = padded_vocab / t;
  vocab_start_ = multi(tp) ? tp->rank() * shard_rows_ : 0;
}

void VocabParallelEmbedding::forward(const ops::OpContext& ctx, const TensorView& ids, const TensorView& table,
                                     const TensorView& out) const {
  BIGNLP_CHECK(table.size(0) == shard_rows_, "embedding shard has {} rows, expected {}", table.size(0), shard_rows_);
  ops::embedding_forward(ctx, ids, table, out, vocab_start_, false);
  if (multi(tp_)) reduce_from_tp_region_forward(*tp_, out);
}

void VocabParallelEmbedding::backward(const ops::OpContext& ctx, const TensorView& ids, const TensorView& dout,
                                      const TensorView& dtable) const {
  ops::embedding_backward(ctx, ids, dout, dtable, vocab_start_);
}

VocabParallelCrossEntropy::VocabParallelCrossEntropy(comm::Communicator* tp, std::int64_t vocab_start)
    : tp_(tp), vocab_start_(vocab_start) {}

void VocabParallelCrossEntropy::forward(const ops::OpContext& ctx, const TensorView& logits, const TensorView& targets,
                                        const TensorView& losses, const TensorView& lse) const {
  ops::cross_entropy_forward(ctx, logits, targets, losses, lse, vocab_start_);
  if (!multi(tp_)) return;
  const std::int64_t n = losses.numel();
  // Per-token scalars on the host (they are N floats next to N x V/t logits).
  std::vector<float> shard_lse(static_cast<std::size_t>(n)), shard_loss(static_cast<std::size_t>(n));
  const auto host_view = [](std::vector<float>& v) {
    return TensorView(v.data(), DType::kF32, Shape{static_cast<std::int64_t>(v.size())});
  };
  ops::copy(ctx, lse, host_view(shard_lse));
  ops::copy(ctx, losses, host_view(shard_loss));
  std::vector<float> m = shard_lse;
  tp_->all_reduce(host_view(m), comm::ReduceOp::kMax);
  // Two sums in one all-reduce: [exp(lse_r - m) | lse_r - loss_r].
  std::vector<float> sums(static_cast<std::size_t>(2 * n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    sums[k] = std::exp(shard_lse[k] - m[k]);
    sums[static_cast<std::size_t>(n) + k] = shard_lse[k] - shard_loss[k];
  }
  tp_->all_reduce(host_view(sums), comm::ReduceOp::kSum);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    shard_lse[k] = m[k] + std::log(sums[k]);
    shard_loss[k] = shard_lse[k] - sums[static_cast<std::size_t>(n) + k];
  }
  ops::copy(ctx, host_view(shard_lse), lse);
  ops::copy(ctx, host_view(shard_loss), losses);
}

void VocabParallelCrossEntropy::backward(const ops::OpContext& ctx, const TensorView& logits, const TensorView& targets,
                                         const TensorView& lse, const TensorView& dlosses, const TensorView& dlogits) const {
  ops::cross_entropy_backward(ctx, logits, targets, lse, dlosses, dlogits, vocab_start_);
}

}  // namespace bignlp::parallel
