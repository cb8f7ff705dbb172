#include "bignlp/train/optimizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp::train {

AdamOptimizer::AdamOptimizer(model::ParameterStore& store, const OptimizerConfig& config, const ops::OpContext& ctx,
                             const parallel::ParallelContext& parallel, parallel::GradBuckets* sharding)
    : store_(&store),
      config_(config),
      ctx_(ctx),
      parallel_(parallel),
      sharding_(sharding != nullptr && sharding->dp_size() > 1 ? sharding : nullptr) {
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
  std::int64_t moments = store.numel();
  if (sharding_ != nullptr) {
    owned_ = sharding_->owned_ranges();
    moments = 0;
    for (const auto& r : owned_) moments += r.size();
  }
  exp_avg_ = Buffer(*ctx.allocator, DType::kF32, Shape{moments});
  exp_avg_sq_ = Buffer(*ctx.allocator, DType::kF32, Shape{moments});
  norm_ = Buffer(*ctx.allocator, DType::kF32, Shape{1});
  ops::fill(ctx_, exp_avg_, 0.0);
  ops::fill(ctx_, exp_avg_sq_, 0.0);
}

double AdamOptimizer::squared_grad_norm() {
  float sq = 0.0f;
  const TensorView host(&sq, DType::kF32, Shape{1});
  if (sharding_ == nullptr && parallel_.model_parallel == nullptr) {
    // One replica holds every parameter once (data-parallel copies are identical).
    ops::sum_squares(ctx_, store_->flat_grad(), norm_);
    ops::copy(ctx_, norm_, host);
    return sq;
  }
  ops::fill(ctx_, norm_, 0.0);
  const TensorView flat = store_->flat_grad();
  for (const auto& p : store_->params()) {
    if (p.shared || (!p.tensor_parallel() && !parallel_.counts_replicated_params())) continue;
    if (sharding_ == nullptr) {
      ops::sum_squares(ctx_, flat.slice(0, p.offset, p.numel()), norm_, /*accumulate=*/true);
      continue;
    }
    for (const auto& r : owned_) {
      const std::int64_t lo = std::max(r.begin, p.offset), hi = std::min(r.end, p.offset + p.numel());
      if (lo < hi) ops::sum_squares(ctx_, flat.slice(0, lo, hi - lo), norm_, /*accumulate=*/true);
    }
  }
  ops::copy(ctx_, norm_, host);
  if (sharding_ != nullptr && parallel_.dp != nullptr) parallel_.dp->all_reduce(host, comm::ReduceOp::kSum);
  if (parallel_.model_parallel != nullptr) parallel_.model_parallel->all_reduce(host, comm::ReduceOp::kSum);
  return sq;
}

OptimizerStepResult AdamOptimizer::step(double lr, double loss_scale, double max_grad_norm) {
  OptimizerStepResult r;
  const double sq = squared_grad_norm();
  r.grad_norm = std::sqrt(sq) / loss_scale;
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
  if (sharding_ != nullptr) {
    // This rank's shards only, parameter fragment by fragment (weight decay is per parameter).
    const TensorView master = store_->flat_master(), grad = store_->flat_grad(), value = store_->flat_value();
    std::int64_t moment_offset = 0;
    for (const auto& range : owned_) {
      for (const auto& p : store_->params()) {
        const std::int64_t lo = std::max(range.begin, p.offset), hi = std::min(range.end, p.offset + p.numel());
        if (lo >= hi) continue;
        a.weight_decay = p.weight_decay ? static_cast<float>(config_.weight_decay) : 0.0f;
        const std::int64_t mo = moment_offset + lo - range.begin;
        ops::adamw_step(ctx_, master.slice(0, lo, hi - lo), grad.slice(0, lo, hi - lo),
                        exp_avg_.view().slice(0, mo, hi - lo), exp_avg_sq_.view().slice(0, mo, hi - lo), a,
                        separate_values ? value.slice(0, lo, hi - lo) : TensorView{});
      }
      moment_offset += range.size();
    }
    // Every rank gets the updated weights of the others' shards.
    sharding_->all_gather_shards(value);
    return r;
  }
  for (auto& p : store_->params()) {
    a.weight_decay = p.weight_decay ? static_cast<float>(config_.weight_decay) : 0.0f;
    const TensorView m = exp_avg_.view().slice(0, p.offset, p.numel());
    const TensorView v = exp_avg_sq_.view().slice(0, p.offset, p.numel());
    ops::adamw_step(ctx_, p.master.reshape(Shape{p.numel()}), p.grad.reshape(Shape{p.numel()}), m, v, a,
                    separate_values ? p.value.reshape(Shape{p.numel()}) : TensorView{});
  }
  return r;
}

void AdamOptimizer::gather_moments(Buffer& m, Buffer& v) {
  BIGNLP_CHECK(sharding_ != nullptr, "gather_moments() is for the distributed optimizer");
  const std::int64_t n = store_->numel();
  m = Buffer(*ctx_.allocator, DType::kF32, Shape{n});
  v = Buffer(*ctx_.allocator, DType::kF32, Shape{n});
  ops::fill(ctx_, m, 0.0);
  ops::fill(ctx_, v, 0.0);
  std::int64_t off = 0;
  for (const auto& r : owned_) {
    ops::copy(ctx_, exp_avg_.view().slice(0, off, r.size()), m.view().slice(0, r.begin, r.size()));
    ops::copy(ctx_, exp_avg_sq_.view().slice(0, off, r.size()), v.view().slice(0, r.begin, r.size()));
    off += r.size();
  }
  sharding_->all_gather_shards(m);
  sharding_->all_gather_shards(v);
}

void AdamOptimizer::gather_master() {
  BIGNLP_CHECK(sharding_ != nullptr, "gather_master() is for the distributed optimizer");
  if (store_->compute_dtype() != DType::kF32) sharding_->all_gather_shards(store_->flat_master());
}

void AdamOptimizer::load_moments(const TensorView& m, const TensorView& v) {
  BIGNLP_CHECK(sharding_ != nullptr, "load_moments() is for the distributed optimizer");
  std::int64_t off = 0;
  for (const auto& r : owned_) {
    ops::copy(ctx_, m.slice(0, r.begin, r.size()), exp_avg_.view().slice(0, off, r.size()));
    ops::copy(ctx_, v.slice(0, r.begin, r.size()), exp_avg_sq_.view().slice(0, off, r.size()));
    off += r.size();
  }
}

}  // namespace bignlp::train
