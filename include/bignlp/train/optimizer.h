// AdamOptimizer: Adam(W) over a model's ParameterStore, with gradient unscaling, global-norm
// clipping and the overflow check, in Megatron's step order (megatron-model.md §2.4, §3.1):
//   unscale by 1/loss_scale -> global L2 norm over all fp32 grads (inf/nan: skip the step) ->
//   clip coefficient max_norm / (norm + 1e-6) when < 1 -> Adam on fp32 master weights with fp32
//   moments -> compute copy (bf16/fp16) refreshed from the master weights.
// Names (model.optim.name): fused_adam, distributed_fused_adam, adamw (decoupled weight decay,
// apex FusedAdam adam_w_mode) and adam (torch.optim.Adam: L2 added to the gradient). Weight decay
// applies to parameters with Parameter::weight_decay (not biases, not LayerNorm). A step is one
// multi-tensor Adam call (ops::adamw_step_multi) and one multi-tensor sum of squares
// (ops::sum_squares_multi) over the parameter list.
//
// Parallel ranks (a ParallelContext): the gradient norm counts each parameter once per model
// replica (tensor-parallel shards on every TP rank, replicated parameters on TP rank 0 only, the
// last stage's tied-embedding copy not at all) and sums the squares over the model-parallel group
// (TP x PP), as Megatron's clip_grad_norm does. A non-finite gradient in a parameter that does not
// count (a duplicate) still makes the local sum non-finite, so every rank takes the same skip
// decision: the sum is all-reduced over every rank that could see a different gradient.
//
// The distributed optimizer (model.optim.name distributed_fused_adam with data parallelism; a
// GradBuckets in reduce-scatter mode) is ZeRO-1/2 over the DP group in apex DistributedFusedAdam's
// layout: each DP rank owns one shard of every gradient bucket (GradBuckets::owned_ranges). It
// keeps exp_avg/exp_avg_sq for those elements only; the parameter store keeps their fp32 master
// weights only (under mixed precision; at fp32 the master weights are the compute copy, which
// every rank holds whole). After the gradients are reduce-scattered, the rank's squared norm over
// its shards is summed over DP and the model-parallel group (the whole world), Adam updates the
// shards, and the updated compute-dtype weights are all-gathered so every rank has complete
// weights. Per rank: 6 + 12/d bytes per parameter under mixed precision (compute copy 2, fp32
// gradient 4, master + moments 12/d), 8 + 8/d at fp32. Checkpoints assemble the full state with
// gather_state() and load it per parameter with ParameterStore::assign and assign_moments().
//
// Frozen parameters (Parameter::trainable false) take no part: the optimizer works on the store's
// trainable elements [0, trainable_numel()) only, so they get no moments, no update and no place
// in the gradient norm; the distributed optimizer's buckets and shards cover trainable elements
// only. state_bytes() = 8 bytes per trainable element this rank owns (moments) + 4 per kept
// master element under mixed precision.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bignlp/checkpoint/optimizer_state.h"
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

/// Implements checkpoint::OptimizerState (its state is what checkpoints save).
class AdamOptimizer final : public checkpoint::OptimizerState {
 public:
  /// Allocates zeroed moments on ctx.allocator. Throws ConfigError for an unknown name or bad betas.
  /// `sharding`: the distributed optimizer's bucket layout (reduce-scatter mode; must outlive the
  /// optimizer), or null for the replicated optimizer. With sharding over several DP ranks, a
  /// mixed-precision store must keep master weights for exactly sharding->owned_ranges()
  /// (GptModel does so when ParallelOptions::distributed_optimizer_bucket_numel is set).
  AdamOptimizer(model::ParameterStore& store, const OptimizerConfig& config, const ops::OpContext& ctx,
                const parallel::ParallelContext& parallel = {}, parallel::GradBuckets* sharding = nullptr);

  /// One optimizer step with learning rate `lr`; gradients are divided by `loss_scale` and clipped
  /// to `max_grad_norm` (<= 0: no clipping).
  OptimizerStepResult step(double lr, double loss_scale, double max_grad_norm);

  /// Successful steps so far (Adam's bias-correction step count).
  std::int64_t steps() const override { return steps_; }
  void set_steps(std::int64_t steps) override { steps_ = steps; }
  /// The moments: laid out like the flat gradients (replicated optimizer: the trainable elements),
  /// or the elements of owned_ranges() back to back (distributed optimizer).
  TensorView exp_avg() const override { return exp_avg_.view(); }
  TensorView exp_avg_sq() const override { return exp_avg_sq_.view(); }
  const OptimizerConfig& config() const { return config_; }

  /// True for the distributed optimizer (state of this DP rank's shards only).
  bool sharded() const override { return sharding_ != nullptr; }
  /// The flat ranges this rank updates: its shards (distributed), or all trainable elements.
  const std::vector<parallel::FlatRange>& owned_ranges() const { return owned_; }
  /// Bytes of optimizer state this rank holds: the moments plus the store's separate fp32 master
  /// buffer (none at fp32, where the master weights are the compute copy).
  std::size_t state_bytes() const;

  /// The full state laid out like the parameters, as a checkpoint stores it, in host memory:
  /// fp32 master weights (left empty when the store keeps all of them: read its flat_master())
  /// and both moments. Distributed optimizer: assembled from every DP rank's shards one bucket at
  /// a time, a collective over the DP group; only ranks with `receive` get the vectors filled.
  /// Replicated optimizer: copies of the moments.
  void gather_state(bool receive, std::vector<float>& master, std::vector<float>& exp_avg,
                    std::vector<float>& exp_avg_sq) override;
  /// Sets the moments of parameter `p` from its full fp32 moments (p's numel, host or device):
  /// the elements this rank keeps (checkpoint load).
  void assign_moments(const model::Parameter& p, const TensorView& exp_avg, const TensorView& exp_avg_sq) override;

 private:
  void build_tensor_lists();
  double squared_grad_norm();

  model::ParameterStore* store_;
  OptimizerConfig config_;
  ops::OpContext ctx_;
  parallel::ParallelContext parallel_;
  parallel::GradBuckets* sharding_ = nullptr;
  std::vector<parallel::FlatRange> owned_;  // flat ranges this rank updates, in moment order
  std::vector<std::int64_t> owned_offsets_;  // start of each owned range in the moments
  bool decoupled_ = true;
  Buffer exp_avg_, exp_avg_sq_;  // replicated: flat like the params; sharded: owned_ back to back
  Buffer norm_;                  // (2) fp32 scratch: counted and duplicate sums of squares
  // Precomputed views for the multi-tensor ops (the buffers never move).
  std::vector<ops::AdamWTensors> adam_groups_;   // one per parameter (fragment when sharded)
  std::vector<TensorView> norm_counted_;         // gradients counted in the norm
  std::vector<TensorView> norm_duplicates_;      // gradients only checked for inf/nan
  bool norm_whole_buffer_ = false;               // one rank, no model parallelism: the flat buffer at once
  std::int64_t steps_ = 0;
};

}  // namespace bignlp::train
