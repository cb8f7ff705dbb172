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
  if (sharding_ != nullptr) {
    owned_ = sharding_->owned_ranges();
    BIGNLP_CHECK(store.master_complete() || store.master_ranges() == owned_,
                 "the parameter store keeps master weights for other ranges than this rank's optimizer shards");
  } else {
    BIGNLP_CHECK(store.master_complete(),
                 "the replicated optimizer needs the master weights of every element; the store keeps shards only");
    if (store.trainable_numel() > 0) owned_ = {{0, store.trainable_numel()}};
  }
  std::int64_t moments = 0;
  for (const auto& r : owned_) {
    owned_offsets_.push_back(moments);
    moments += r.size();
  }
  exp_avg_ = Buffer(*ctx.allocator, DType::kF32, Shape{moments});
  exp_avg_sq_ = Buffer(*ctx.allocator, DType::kF32, Shape{moments});
  norm_ = Buffer(*ctx.allocator, DType::kF32, Shape{2});
  ops::fill(ctx_, exp_avg_, 0.0);
  ops::fill(ctx_, exp_avg_sq_, 0.0);
  build_tensor_lists();
}

void AdamOptimizer::build_tensor_lists() {
  const bool separate_values = store_->compute_dtype() != DType::kF32;
  const float wd = static_cast<float>(config_.weight_decay);
  const TensorView grad = store_->flat_grad(), value = store_->flat_value();
  // Adam: every trainable parameter (replicated), or every fragment of one inside an owned range.
  // Frozen parameters lie outside [0, trainable_numel), so no owned range reaches them.
  for (std::size_t i = 0; i < owned_.size(); ++i) {
    const parallel::FlatRange& range = owned_[i];
    for (const auto& p : store_->params()) {
      const parallel::FlatRange part = range.intersect({p.offset, p.offset + p.numel()});
      if (part.size() == 0) continue;
      const std::int64_t mo = owned_offsets_[i] + part.begin - range.begin;
      ops::AdamWTensors t;
      t.param = store_->master_range(part);
      t.grad = grad.slice(0, part.begin, part.size());
      t.exp_avg = exp_avg_.view().slice(0, mo, part.size());
      t.exp_avg_sq = exp_avg_sq_.view().slice(0, mo, part.size());
      if (separate_values) t.model_param = value.slice(0, part.begin, part.size());
      t.weight_decay = p.weight_decay ? wd : 0.0f;
      adam_groups_.push_back(t);
    }
  }
  // Gradient norm (trainable parameters only): with one rank and no model parallelism the whole
  // buffer at once (every element counts once); else parameter by parameter (and owned range by
  // owned range when sharded).
  norm_whole_buffer_ = sharding_ == nullptr && parallel_.model_parallel == nullptr;
  if (norm_whole_buffer_) return;
  for (const auto& p : store_->params()) {
    const bool counted = !p.shared && (p.tensor_parallel() || parallel_.counts_replicated_params());
    for (const auto& range : owned_) {
      const parallel::FlatRange part = range.intersect({p.offset, p.offset + p.numel()});
      if (part.size() == 0) continue;
      (counted ? norm_counted_ : norm_duplicates_).push_back(grad.slice(0, part.begin, part.size()));
    }
  }
}

std::size_t AdamOptimizer::state_bytes() const {
  const std::size_t master = store_->compute_dtype() != DType::kF32 ? store_->flat_master().nbytes() : 0;
  return exp_avg_.nbytes() + exp_avg_sq_.nbytes() + master;
}

double AdamOptimizer::squared_grad_norm() {
  float sq[2] = {0.0f, 0.0f};
  if (norm_whole_buffer_) {
    // One replica holds every parameter once (data-parallel copies are identical).
    ops::sum_squares(ctx_, store_->flat_grad(), norm_.view().slice(0, 0, 1));
    ops::copy(ctx_, norm_.view().slice(0, 0, 1), TensorView(sq, DType::kF32, Shape{1}));
    return sq[0];
  }
  const auto sum = [&](const std::vector<TensorView>& xs, std::int64_t slot) {
    const TensorView out = norm_.view().slice(0, slot, 1);
    if (xs.empty())
      ops::fill(ctx_, out, 0.0);
    else
      ops::sum_squares_multi(ctx_, xs, out);
  };
  sum(norm_counted_, 0);
  sum(norm_duplicates_, 1);
  ops::copy(ctx_, norm_.view(), TensorView(sq, DType::kF32, Shape{2}));
  // Duplicates add nothing to the norm, but an overflow in one must skip the step everywhere.
  float local = sq[0];
  if (!std::isfinite(sq[1])) local += sq[1];
  // A host scalar: every backend reduces it (NCCL stages it through device memory).
  const TensorView host(&local, DType::kF32, Shape{1});
  if (sharding_ != nullptr && parallel_.dp != nullptr) parallel_.dp->all_reduce(host, comm::ReduceOp::kSum);
  if (parallel_.model_parallel != nullptr) parallel_.model_parallel->all_reduce(host, comm::ReduceOp::kSum);
  return local;
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
  ops::adamw_step_multi(ctx_, adam_groups_, a);
  // Distributed: every rank gets the updated weights of the others' shards.
  if (sharding_ != nullptr) sharding_->all_gather_shards(store_->flat_value());
  return r;
}

void AdamOptimizer::gather_state(bool receive, std::vector<float>& master, std::vector<float>& exp_avg,
                                 std::vector<float>& exp_avg_sq) {
  const std::int64_t n = store_->trainable_numel();  // laid out like the flat gradients
  const auto host = [&](std::vector<float>& v) {
    v.assign(receive ? static_cast<std::size_t>(n) : 0, 0.0f);
    return receive ? TensorView(v.data(), DType::kF32, Shape{n}) : TensorView{};
  };
  master.clear();
  if (sharding_ == nullptr) {
    if (!receive) return;
    ops::copy(ctx_, exp_avg_, host(exp_avg));
    ops::copy(ctx_, exp_avg_sq_, host(exp_avg_sq));
    return;
  }
  if (!store_->master_complete()) sharding_->gather_shards(store_->flat_master(), host(master));
  sharding_->gather_shards(exp_avg_, host(exp_avg));
  sharding_->gather_shards(exp_avg_sq_, host(exp_avg_sq));
}

void AdamOptimizer::assign_moments(const model::Parameter& p, const TensorView& m, const TensorView& v) {
  BIGNLP_CHECK(m.numel() == p.numel() && v.numel() == p.numel() && m.dtype() == DType::kF32 &&
                   v.dtype() == DType::kF32 && m.is_contiguous() && v.is_contiguous(),
               "assign_moments '{}': expected {} contiguous fp32 elements, got {} and {}", p.name, p.numel(),
               m.to_string(), v.to_string());
  const TensorView mf = m.reshape(Shape{p.numel()}), vf = v.reshape(Shape{p.numel()});
  for (std::size_t i = 0; i < owned_.size(); ++i) {
    const parallel::FlatRange part = owned_[i].intersect({p.offset, p.offset + p.numel()});
    if (part.size() == 0) continue;
    const std::int64_t mo = owned_offsets_[i] + part.begin - owned_[i].begin;
    ops::copy(ctx_, mf.slice(0, part.begin - p.offset, part.size()), exp_avg_.view().slice(0, mo, part.size()));
    ops::copy(ctx_, vf.slice(0, part.begin - p.offset, part.size()), exp_avg_sq_.view().slice(0, mo, part.size()));
  }
}

}  // namespace bignlp::train
