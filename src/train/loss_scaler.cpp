#include "bignlp/train/loss_scaler.h"

namespace bignlp::train {

DynamicLossScaler::DynamicLossScaler(const LossScalerConfig& config) : config_(config) {
  state_.scale = config.enabled ? config.init_scale : 1.0;
  state_.hysteresis_tracker = config.hysteresis;
}

void DynamicLossScaler::update(bool found_inf) {
  if (!config_.enabled) return;
  if (found_inf) {
    state_.hysteresis_tracker -= 1;
    state_.growth_tracker = 0;
    if (state_.hysteresis_tracker <= 0) state_.scale *= config_.backoff_factor;
    return;
  }
  state_.hysteresis_tracker = config_.hysteresis;
  state_.growth_tracker += 1;
  if (state_.growth_tracker >= config_.growth_interval) {
    state_.scale *= config_.growth_factor;
    state_.growth_tracker = 0;
  }
}

}  // namespace bignlp::train
