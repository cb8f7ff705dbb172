// Dynamic loss scaling for fp16 training, NeMo's GradScaler semantics (megatron-model.md §2.2).
//
// The loss is multiplied by scale() before backward; gradients are unscaled before clipping and the
// optimizer step. update(found_inf) after every step:
//   inf/nan: hysteresis_tracker -= 1; when it reaches <= 0 the scale is multiplied by 0.5; the
//            growth tracker restarts; the step is skipped (and the LR schedule does not advance).
//   clean:   growth_tracker += 1, the scale doubles every growth_interval clean steps, and the
//            hysteresis tracker is reset to `hysteresis` (NeMo resets it on every clean step).
// No minimum scale (NeMo). bf16 and fp32 use no scaler (scale 1, never updates).
#pragma once

#include <cstdint>

#include "bignlp/checkpoint/metadata.h"

namespace bignlp::train {

struct LossScalerConfig {
  bool enabled = false;           ///< true only for precision 16
  double init_scale = 4294967296.0;  ///< model.native_amp_init_scale (2^32)
  std::int64_t growth_interval = 1000;  ///< model.native_amp_growth_interval
  int hysteresis = 2;             ///< model.hysteresis
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
};

/// The scaler's resumable state {scale, growth_tracker, hysteresis_tracker}, as checkpoints record it.
using LossScalerState = checkpoint::LossScalerState;

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(const LossScalerConfig& config);
  /// The current scale (1 when disabled).
  double scale() const { return state_.scale; }
  /// Records the outcome of a step; see the file comment.
  void update(bool found_inf);
  bool enabled() const { return config_.enabled; }
  const LossScalerState& state() const { return state_; }
  void restore(const LossScalerState& state) { state_ = state; }

 private:
  LossScalerConfig config_;
  LossScalerState state_;
};

}  // namespace bignlp::train
