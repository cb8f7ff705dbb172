// Learning-rate schedules of NeMo (megatron-model.md §3.3), as pure functions of the scheduler step.
//
// The scheduler step counts successful optimizer steps: the first optimizer step uses step 0, a
// skipped (fp16 overflow) step does not advance it. Names: CosineAnnealing (two warm-up formulas:
// with constant_steps 0 the warm-up is base*(k+1)/(W+1) and the cosine decays over max_steps - W;
// with constant_steps C > 0 it is Megatron-style base*k/W, cosine over max_steps - W - C, then
// min_lr held), WarmupAnnealing (warm-up (k+1)/(W+1), then linear to min_lr), and null/None
// (constant lr). Every schedule returns min_lr after max_steps.
// Worked example (CosineAnnealing, lr 1e-3, W 5, C 0, min 1e-4, max 60): step 0 -> 1.667e-4,
// step 5 -> 1e-3, step 32.5 -> 5.5e-4, step 60 -> 1e-4.
#pragma once

#include <cstdint>
#include <string>

namespace bignlp::train {

struct LrScheduleConfig {
  std::string name = "CosineAnnealing";  ///< CosineAnnealing | WarmupAnnealing | "" (constant)
  double lr = 1e-4;                      ///< model.optim.lr (base/max)
  std::int64_t warmup_steps = 0;
  double warmup_ratio = -1.0;            ///< used when >= 0 (W = int(ratio * max_steps))
  std::int64_t constant_steps = 0;
  double constant_ratio = -1.0;
  double min_lr = 0.0;
  std::int64_t max_steps = 0;            ///< trainer.max_steps
};

class LrSchedule {
 public:
  /// Validates the configuration; throws ConfigError naming model.optim.sched.<key>.
  explicit LrSchedule(const LrScheduleConfig& config);
  /// Learning rate at scheduler step `step` (0-based).
  double lr(std::int64_t step) const;
  std::int64_t warmup_steps() const { return warmup_; }
  std::int64_t constant_steps() const { return constant_; }

 private:
  enum class Kind { kConstant, kCosine, kWarmupAnnealing };
  Kind kind_ = Kind::kConstant;
  LrScheduleConfig config_;
  std::int64_t warmup_ = 0;
  std::int64_t constant_ = 0;
};

}  // namespace bignlp::train
