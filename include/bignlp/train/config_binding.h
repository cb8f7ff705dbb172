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

#include <nlohmann/json.hpp>

#include "bignlp/config/view.h"
#include "bignlp/train/training_config.h"

namespace bignlp::train {

/// The TrainingConfig of a stage config. Throws ConfigError (with provenance) or IoError.
TrainingConfig bind_training_config(const config::ConfigView& cfg);

/// The data keys of a T5/mT5 config into c.data (data_prefix, splits_string, index_mapping_dir) and
/// c.data.t5 (seq_length, seq_length_dec, masked_lm_prob, short_seq_prob, max_ngram_size,
/// mean_ngram_size, geometric_dist, permutation, whole_word_masking, favor_longer_ngrams,
/// respect_document_boundaries; model.tokenizer.num_sentinel_tokens; run.preprocessed_dir and
/// run.blending_alpha when data_prefix is null). dataset_type must be t5 and dataloader_type single;
/// unsupported values are ConfigErrors naming the key. bind_training_config calls it for configs
/// with a model.encoder section.
void bind_t5_data_config(const config::ConfigView& cfg, TrainingConfig& c);

/// The sections the tuning stages share with pre-training: trainer.*, exp_manager.* and
/// model.optim.* (plus the ignored-key list). The caller binds its own model/data keys and audits
/// the sections afterwards (prompt learning: tune/prompt_learning.h).
void bind_trainer_exp_manager_optim(const config::ConfigView& cfg, TrainingConfig& c);

/// The trainer.* keys (nodes, devices, accelerator, precision, max_steps, max_time, logging,
/// validation interval and batches, gradient clipping) into `c`, as bind_training_config reads them
/// (the fine_tuning stage reuses it for its trainer section).
void bind_trainer_config(const config::ConfigView& cfg, TrainingConfig& c);

/// A resolved config tree as a JSON value (checkpoint metadata, the W&B config): "???" stays a
/// string and non-finite floats (which JSON lacks) become null.
nlohmann::json to_json_value(const config::ConfigNode& n);

/// model.optim.* (optimizer, LR schedule) and the data-parallel bucket size into `c`.
void bind_optimizer_config(const config::ConfigView& cfg, TrainingConfig& c);

}  // namespace bignlp::train
