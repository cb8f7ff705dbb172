#include "bignlp/train/optimizer.h"

#include <fmt/format.h>

#include <cmath>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp::train {

AdamOptimizer::AdamOptimizer(model::ParameterStore& store, const OptimizerConfig& config, const ops::OpContext& ctx)
    : store_(&store), config_(config), ctx_(ctx) {
  if (config.name == "fused_adam" || config.name == "distributed_fused_adam" || config.name == "adamw")
    decoupled_ = true;
  else if (config.name == "adam")
    decoupled_ = false;
  else
    throw ConfigError(fmt::format("model.optim.name: '{}' is not a supported optimizer; expected one of fused_adam, "
                                  "distributed_fused_adam, adam, adamw",
                                  config.name));
  if (!(config.beta1 >= 0.0 && config.beta1 < 1.0 && config.beta2 >= 0.0 && config.beta2 < 1.0))
    throw ConfigError(fmt::format("model.optim.betas: each must be in [0, 1), got [{}, {}]", config.beta1, config.beta2));
  if (config.weight_decay < 0.0)
    throw ConfigError(fmt::format("model.optim.weight_decay: must be >= 0, got {}", config.weight_decay));
  BIGNLP_CHECK(store.allocated() && ctx.allocator != nullptr, "optimizer needs an allocated store and an allocator");
  exp_avg_ = Buffer(*ctx.allocator, DType::kF32, Shape{store.numel()});
  exp_avg_sq_ = Buffer(*ctx.allocator, DType::kF32, Shape{store.numel()});
  norm_ = Buffer(*ctx.allocator, DType::kF32, Shape{1});
  ops::fill(ctx_, exp_avg_, 0.0);
  ops::fill(ctx_, exp_avg_sq_, 0.0);
}

OptimizerStepResult AdamOptimizer::step(double lr, double loss_scale, double max_grad_norm) {
  OptimizerStepResult r;
  ops::sum_squares(ctx_, store_->flat_grad(), norm_);
  float sq = 0.0f;
  ops::copy(ctx_, norm_, TensorView(&sq, DType::kF32, Shape{1}));
  r.grad_norm = std::sqrt(static_cast<double>(sq)) / loss_scale;
  if (!std::isfinite(r.grad_norm)) {
    r.skipped = true;
    return r;
  }
  if (max_grad_norm > 0.0) {
    const double coeff = max_grad_norm / (r.grad_norm + 1e-6);
    if (coeff < 1.0) r.clip_coeff = coeff;
  }
  ++steps_;
  ops::AdamWParams a;
  a.lr = static_cast<float>(lr);
  a.beta1 = static_cast<float>(config_.beta1);
  a.beta2 = static_cast<float>(config_.beta2);
  a.eps = static_cast<float>(config_.eps);
  a.decoupled_weight_decay = decoupled_;
  a.step = steps_;
  a.grad_scale = static_cast<float>(r.clip_coeff / loss_scale);
  const bool separate_values = store_->compute_dtype() != DType::kF32;
  for (auto& p : store_->params()) {
    a.weight_decay = p.weight_decay ? static_cast<float>(config_.weight_decay) : 0.0f;
    const TensorView m = exp_avg_.view().slice(0, p.offset, p.numel());
    const TensorView v = exp_avg_sq_.view().slice(0, p.offset, p.numel());
    ops::adamw_step(ctx_, p.master.reshape(Shape{p.numel()}), p.grad.reshape(Shape{p.numel()}), m, v, a,
                    separate_values ? p.value.reshape(Shape{p.numel()}) : TensorView{});
  }
  return r;
}

}  // namespace bignlp::train
