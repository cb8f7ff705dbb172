// How a model is split and trained, as far as its sizes care: the (TP, PP) shard one rank holds,
// and the training layout (parallel sizes, micro-batching, precision, optimizer, recomputation)
// that the memory estimate of memory.h takes. Plain values; the program or the HP tool fills them
// from a config (model.tensor_model_parallel_size, trainer.precision, model.optim.name, ...).
#pragma once

#include <cstdint>

namespace bignlp::sizing {

/// Which shard of the model one rank holds. Counts are the same on every TP rank of a stage and
/// differ between pipeline stages.
struct ModelParallelRank {
  int tp_size = 1;
  int pp_size = 1;
  int pp_rank = 0;
  /// T5 only: the first decoder stage (model.pipeline_model_parallel_split_rank); 0 means PP / 2.
  int pipeline_split_rank = 0;
};

/// trainer.precision: fp32, or 16-bit compute with fp32 master weights, gradients and Adam state
/// (NeMo megatron_amp_O2 / Megatron's Float16Optimizer; bf16 and fp16 cost the same bytes).
enum class Precision { kFp32, kBf16, kFp16 };

/// model.activations_checkpoint_granularity, applied to every layer (method uniform, one layer
/// per checkpoint).
enum class Recompute {
  kNone,
  kSelective,  ///< core attention (QK^T, softmax, its dropout, probs*V) recomputed in backward
  kFull,       ///< whole layers recomputed from their input
};

struct TrainingLayout {
  int tp_size = 1;
  int pp_size = 1;
  int dp_size = 1;
  int virtual_pipeline_size = 1;  ///< model chunks per stage (interleaved 1F1B), GPT only
  int pipeline_split_rank = 0;    ///< T5: the first decoder stage (0: PP / 2)
  bool sequence_parallel = false; ///< model.sequence_parallel (takes effect with TP > 1)
  std::int64_t micro_batch_size = 1;   ///< B
  std::int64_t num_micro_batches = 1;  ///< M = global batch / (B * DP)
  Precision precision = Precision::kBf16;
  /// model.optim.name distributed_fused_adam: fp32 master weights and Adam moments sharded over DP.
  bool distributed_optimizer = false;
  Recompute recompute = Recompute::kNone;

  /// The shard of stage `pp_rank`.
  ModelParallelRank rank(int pp_rank) const { return {tp_size, pp_size, pp_rank, pipeline_split_rank}; }
};

}  // namespace bignlp::sizing
