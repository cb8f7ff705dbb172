#include "bignlp/train/lr_schedule.h"

#include <fmt/format.h>

#include <cmath>

#include "bignlp/core/error.h"

namespace bignlp::train {
namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

LrSchedule::LrSchedule(const LrScheduleConfig& c) : config_(c) {
  if (c.name.empty() || c.name == "None" || c.name == "null" || c.name == "constant")
    kind_ = Kind::kConstant;
  else if (c.name == "CosineAnnealing")
    kind_ = Kind::kCosine;
  else if (c.name == "WarmupAnnealing")
    kind_ = Kind::kWarmupAnnealing;
  else
    throw ConfigError(fmt::format("model.optim.sched.name: '{}' is not a supported scheduler; expected one of "
                                  "CosineAnnealing, WarmupAnnealing (or null for a constant lr)",
                                  c.name));
  if (c.lr <= 0.0) throw ConfigError(fmt::format("model.optim.lr: must be positive, got {}", c.lr));
  if (kind_ == Kind::kConstant) return;
  if (c.max_steps <= 0)
    throw ConfigError(fmt::format("trainer.max_steps: {} needs max_steps > 0, got {}", c.name, c.max_steps));
  if (c.warmup_steps > 0 && c.warmup_ratio >= 0.0)
    throw ConfigError("model.optim.sched: warmup_steps and warmup_ratio are mutually exclusive");
  warmup_ = c.warmup_ratio >= 0.0 ? static_cast<std::int64_t>(c.warmup_ratio * static_cast<double>(c.max_steps))
                                  : c.warmup_steps;
  constant_ = c.constant_ratio >= 0.0 ? static_cast<std::int64_t>(c.constant_ratio * static_cast<double>(c.max_steps))
                                      : c.constant_steps;
  if (warmup_ < 0) throw ConfigError(fmt::format("model.optim.sched.warmup_steps: must be >= 0, got {}", warmup_));
  if (constant_ < 0)
    throw ConfigError(fmt::format("model.optim.sched.constant_steps: must be >= 0, got {}", constant_));
  if (c.min_lr < 0.0) throw ConfigError(fmt::format("model.optim.sched.min_lr: must be >= 0, got {}", c.min_lr));
  if (kind_ == Kind::kCosine && constant_ > 0 && c.lr <= c.min_lr)
    throw ConfigError(fmt::format("model.optim.sched.min_lr: {} must be below model.optim.lr {}", c.min_lr, c.lr));
  if (warmup_ + constant_ > c.max_steps)
    throw ConfigError(fmt::format("model.optim.sched: warmup_steps {} + constant_steps {} exceed trainer.max_steps {}",
                                  warmup_, constant_, c.max_steps));
}

double LrSchedule::lr(std::int64_t step) const {
  const double base = config_.lr, min_lr = config_.min_lr;
  const std::int64_t max_steps = config_.max_steps, w = warmup_;
  const double s = static_cast<double>(step);
  switch (kind_) {
    case Kind::kConstant: return base;
    case Kind::kCosine:
      if (constant_ > 0) {
        // Megatron-style: linear warm-up from 0, cosine over D = max - W - C, then min_lr held.
        const std::int64_t d = max_steps - (w + constant_);
        if (step > max_steps) return min_lr;
        if (w > 0 && step <= w) return base * s / static_cast<double>(w);
        if (step > w + d) return min_lr;
        const double ratio = (s - static_cast<double>(w)) / static_cast<double>(d);
        return min_lr + (base - min_lr) * 0.5 * (std::cos(kPi * ratio) + 1.0);
      }
      if (w > 0 && step <= w) return base * (s + 1.0) / static_cast<double>(w + 1);
      if (step > max_steps) return min_lr;
      return min_lr + (base - min_lr) * 0.5 *
                          (1.0 + std::cos(kPi * (s - static_cast<double>(w)) / static_cast<double>(max_steps - w)));
    case Kind::kWarmupAnnealing:
      if (w > 0 && step <= w) return base * (s + 1.0) / static_cast<double>(w + 1);
      if (step > max_steps) return min_lr;
      return min_lr + (1.0 - (s - static_cast<double>(w)) / static_cast<double>(max_steps - w)) * (base - min_lr);
  }
  return base;
}

}  // namespace bignlp::train
