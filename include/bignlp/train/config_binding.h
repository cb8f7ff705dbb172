// Binding of the training stage config (NeMo keys) to TrainingConfig.
//
// Reads trainer.*, model.* and exp_manager.* through config::ConfigView (typed reads, errors with
// file:line and key path) and checks afterwards that every key under those three sections was
// read: keys that select behaviour bignlp does not have are accepted only when they hold the value
// that means "off" (e.g. model.fp32_residual_connection: False); keys that only tune PyTorch/NeMo
// machinery (fusion switches, bucket sizes, wandb) are read and ignored, listed in kIgnoredKeys.
// The vocabulary size and end-of-document id come from the tokenizer model.tokenizer.* names
// (data/tokenizer_factory.h).
#pragma once

#include "bignlp/config/view.h"
#include "bignlp/train/training_config.h"

namespace bignlp::train {

/// The TrainingConfig of a stage config. Throws ConfigError (with provenance) or IoError.
TrainingConfig bind_training_config(const config::ConfigView& cfg);

}  // namespace bignlp::train
