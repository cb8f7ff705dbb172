// AdamOptimizer: Adam(W) over a model's ParameterStore, with gradient unscaling, global-norm
// clipping and the overflow check, in Megatron's step order (megatron-model.md §2.4, §3.1):
//   unscale by 1/loss_scale -> global L2 norm over all fp32 grads (inf/nan: skip the step) ->
//   clip coefficient max_norm / (norm + 1e-6) when < 1 -> Adam on fp32 master weights with fp32
//   moments -> compute copy (bf16/fp16) refreshed from the master weights.
// Names (model.optim.name): fused_adam, distributed_fused_adam, adamw (decoupled weight decay,
// apex FusedAdam adam_w_mode) and adam (torch.optim.Adam: L2 added to the gradient). Weight decay
// applies to parameters with Parameter::weight_decay (not biases, not LayerNorm). The moments are
// flat fp32 buffers laid out like the parameters.
//
// Parallel ranks (a ParallelContext): the gradient norm counts each parameter once per model
// replica (tensor-parallel shards on every TP rank, replicated parameters on TP rank 0 only, the
// last stage's tied-embedding copy not at all) and sums the squares over the model-parallel group
// (TP x PP), as Megatron's clip_grad_norm does. The distributed optimizer (a GradBuckets in
// reduce-scatter mode, model.optim.name distributed_fused_adam with data parallelism) keeps the
// moments only for the elements this DP rank owns (its shard of every gradient bucket), updates
// the fp32 master weights of those elements, and all-gathers the updated compute-dtype weights;
// its squared norm is summed over the DP group too. Outside its shards the master copy of a
// 16-bit run is stale (checkpoints gather what they need, see gather_moments / gather_master).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bignlp/model/parameters.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/grad_buckets.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::train {

struct OptimizerConfig {
  std::string name = "fused_adam";
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

/// What one step did.
struct OptimizerStepResult {
  double grad_norm = 0.0;    ///< global L2 norm of the unscaled gradients (inf/nan on overflow)
  bool skipped = false;      ///< non-finite gradients: nothing was updated
  double clip_coeff = 1.0;   ///< the factor applied to the gradients (1: no clipping)
};

class AdamOptimizer {
 public:
  /// Allocates zeroed moments on ctx.allocator. Throws ConfigError for an unknown name or bad betas.
  /// `sharding`: the distributed optimizer's bucket layout (reduce-scatter mode; must outlive the
  /// optimizer), or null for the replicated optimizer.
  AdamOptimizer(model::ParameterStore& store, const OptimizerConfig& config, const ops::OpContext& ctx,
                const parallel::ParallelContext& parallel = {}, parallel::GradBuckets* sharding = nullptr);

  /// One optimizer step with learning rate `lr`; gradients are divided by `loss_scale` and clipped
  /// to `max_grad_norm` (<= 0: no clipping).
  OptimizerStepResult step(double lr, double loss_scale, double max_grad_norm);

  /// Successful steps so far (Adam's bias-correction step count).
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t steps) { steps_ = steps; }
  /// The moments laid out like the parameters (replicated optimizer only; see sharded()).
  TensorView exp_avg() const { return exp_avg_.view(); }
  TensorView exp_avg_sq() const { return exp_avg_sq_.view(); }
  const OptimizerConfig& config() const { return config_; }

  /// True for the distributed optimizer (moments of this DP rank's shards only).
  bool sharded() const { return sharding_ != nullptr; }
  /// Distributed optimizer: the full moments (like exp_avg()) assembled from every DP rank's
  /// shards into m and v (allocated here). Collective over the DP group.
  void gather_moments(Buffer& m, Buffer& v);
  /// Distributed optimizer: makes every rank's fp32 master weights complete (after a 16-bit run).
  /// Collective over the DP group.
  void gather_master();
  /// Distributed optimizer: takes this rank's shards from full moments (checkpoint load).
  void load_moments(const TensorView& m, const TensorView& v);

 private:
  double squared_grad_norm();

  model::ParameterStore* store_;
  OptimizerConfig config_;
  ops::OpContext ctx_;
  parallel::ParallelContext parallel_;
  parallel::GradBuckets* sharding_ = nullptr;
  std::vector<parallel::FlatRange> owned_;  // sharded: flat ranges this rank updates, in order
  bool decoupled_ = true;
  Buffer exp_avg_, exp_avg_sq_;  // replicated: flat like the params; sharded: owned_ back to back
  Buffer norm_;  // (1) fp32 scratch
  std::int64_t steps_ = 0;
};

}  // namespace bignlp::train
