// AdamOptimizer: Adam(W) over a model's ParameterStore, with gradient unscaling, global-norm
// clipping and the overflow check, in Megatron's step order (megatron-model.md §2.4, §3.1):
//   unscale by 1/loss_scale -> global L2 norm over all fp32 grads (inf/nan: skip the step) ->
//   clip coefficient max_norm / (norm + 1e-6) when < 1 -> Adam on fp32 master weights with fp32
//   moments -> compute copy (bf16/fp16) refreshed from the master weights.
// Names (model.optim.name): fused_adam, distributed_fused_adam, adamw (decoupled weight decay,
// apex FusedAdam adam_w_mode) and adam (torch.optim.Adam: L2 added to the gradient). Weight decay
// applies to parameters with Parameter::weight_decay (not biases, not LayerNorm). The moments are
// flat fp32 buffers laid out like the parameters (a data-parallel optimizer can shard them).
// Not handled here: sharding the state over data-parallel ranks (distributed_fused_adam runs as
// fused_adam on one rank).
#pragma once

#include <cstdint>
#include <string>

#include "bignlp/model/parameters.h"
#include "bignlp/ops/ops.h"

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
  AdamOptimizer(model::ParameterStore& store, const OptimizerConfig& config, const ops::OpContext& ctx);

  /// One optimizer step with learning rate `lr`; gradients are divided by `loss_scale` and clipped
  /// to `max_grad_norm` (<= 0: no clipping).
  OptimizerStepResult step(double lr, double loss_scale, double max_grad_norm);

  /// Successful steps so far (Adam's bias-correction step count).
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t steps) { steps_ = steps; }
  TensorView exp_avg() const { return exp_avg_.view(); }
  TensorView exp_avg_sq() const { return exp_avg_sq_.view(); }
  const OptimizerConfig& config() const { return config_; }

 private:
  model::ParameterStore* store_;
  OptimizerConfig config_;
  ops::OpContext ctx_;
  bool decoupled_ = true;
  Buffer exp_avg_, exp_avg_sq_;
  Buffer norm_;  // (1) fp32 scratch
  std::int64_t steps_ = 0;
};

}  // namespace bignlp::train
