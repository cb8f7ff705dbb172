// Per-GPU training memory of a training config (GPT or T5, our conf/training layout), from the
// model arithmetic of sizing/memory.h: weights, gradients, fp32 master weights and Adam state
// (sharded over DP with the distributed optimizer), and the activations kept for backward under
// the config's recomputation, sequence parallelism, micro batch and the pipeline's in-flight
// micro-batches, plus a fixed workspace. The HP search prunes candidates with it, and `bignlp`
// checks training stages before submitting them (docs/hp_tool.md "Memory model").
//
// Partial block recomputation (activations_checkpoint_num_layers = k of a stage's n layers) is
// counted as k layers recomputed in full and n - k keeping everything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/sizing/memory.h"

namespace bignlp::hp {

struct MemoryBreakdown {
  int stage = 0;               ///< the pipeline stage with the largest total
  sizing::MemoryEstimate estimate;
  double workspace_bytes = 0;  ///< fixed per-GPU allowance (CUDA context, cuBLAS/NCCL workspaces)
  int tp = 1, pp = 1, dp = 1, mbs = 1;
  std::int64_t num_micro_batches = 1;
  std::string recompute;       ///< "none", "selective", "full", "full (k of n layers)"
  bool distributed_optimizer = false;
  std::string precision;
  double total_bytes() const { return estimate.total_bytes() + workspace_bytes; }
  /// Multi-line table: one component per line, in GiB.
  std::string explain() const;
};

/// The estimate for the rank of the heaviest stage. `cfg` is a training config with its model
/// keys resolved to numbers (an interpolated ffn_hidden_size is taken as 4 x hidden_size, a null
/// kv_channels as hidden / heads); `vocab_size` is the tokenizer's. Throws ConfigError naming the
/// key when one the estimate needs is missing or the layout cannot split the model.
/// `workspace_gb`: the fixed allowance (0 for the CPU measurements).
MemoryBreakdown estimate_training_memory(const config::ConfigNode& cfg, std::int64_t vocab_size,
                                         double workspace_gb = 1.0);

}  // namespace bignlp::hp

namespace bignlp::hp {

/// A change to a training config and the estimate with it.
struct FittingChange {
  std::vector<std::pair<std::string, config::ConfigNode>> overrides;  ///< model/trainer key -> value
  double total_gb = 0;  ///< GiB per GPU
  std::string text() const;  ///< "model.micro_batch_size=1 model.sequence_parallel=true"
};

/// The nearest layouts that fit in `limit_gb` (one change, then two): smaller micro batches, full
/// recomputation, sequence parallelism, the distributed optimizer, twice the TP or PP size; at
/// most `max_results`, fewest changes first, then smallest estimate.
std::vector<FittingChange> nearest_fitting(const config::ConfigNode& cfg, std::int64_t vocab_size, double limit_gb,
                                           double workspace_gb = 1.0, std::size_t max_results = 3);

/// The tokenizer's vocabulary size the estimate assumes for a training config: GPT-2 BPE 50257,
/// BERT word pieces 28996 (cased) / 30522, SentencePiece 250000 (mT5), else 50257.
std::int64_t assumed_vocab_size(const config::ConfigNode& cfg);

}  // namespace bignlp::hp
