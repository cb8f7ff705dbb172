// TrainingConfig: the training stage's settings as plain data (NeMo key names in the comments).
//
// Filled from the stage config (trainer.*, model.*, exp_manager.*) by train/config_binding.h, or
// directly by tests and benchmarks. validate() checks the cross-key rules (batch divisibility,
// data presence) and throws ConfigError naming the keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/model/gpt_config.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/train/loss_scaler.h"
#include "bignlp/train/lr_schedule.h"
#include "bignlp/train/optimizer.h"
#include "bignlp/train/wandb.h"

namespace bignlp::train {

/// The span-corruption keys of a T5/mT5 run (model.data.*, read when the config is a T5 one).
struct T5DataConfig {
  std::int64_t seq_length = 512;          ///< model.data.seq_length (the encoder's)
  std::int64_t seq_length_dec = 128;      ///< model.data.seq_length_dec
  double masked_lm_prob = 0.15;
  double short_seq_prob = 0.0;
  int max_ngram_size = 10;
  std::optional<double> mean_ngram_size;  ///< null: geometric p = 0.2
  bool geometric_dist = true;
  bool permutation = false;
  bool whole_word_masking = true;
  bool favor_longer_ngrams = false;
  bool respect_document_boundaries = true;
  int num_sentinel_tokens = 100;          ///< model.tokenizer.num_sentinel_tokens
  std::filesystem::path preprocessed_dir; ///< run.preprocessed_dir: the mT5 auto-blend when data_prefix is null
  double blending_alpha = 0.7;            ///< run.blending_alpha
};

struct DataConfig {
  std::vector<std::string> data_prefix;   ///< model.data.data_prefix ([w1, p1, w2, p2, ...] or [p])
  std::string splits_string = "99990,8,2";
  std::filesystem::path index_mapping_dir;  ///< model.data.index_mapping_dir (empty: next to the data)
  bool reset_position_ids = false;        ///< model.data.reset_position_ids
  bool eod_mask_loss = false;             ///< model.data.eod_mask_loss
  std::int64_t eod_token = -1;            ///< the tokenizer's end-of-document id (needed by the two above)
  T5DataConfig t5;                        ///< model_family "t5" only
};

struct ExpManagerConfig {
  std::filesystem::path explicit_log_dir;  ///< exp_manager.explicit_log_dir (results/)
  bool resume_if_exists = true;
  bool resume_ignore_no_checkpoint = true;
  bool create_checkpoint_callback = true;
  std::string monitor = "val_loss";        ///< checkpoint_callback_params.monitor
  std::string mode = "min";                ///< min | max
  int save_top_k = 10;                     ///< -1: all, 0: only "-last"
  std::string filename = "megatron_gpt--{val_loss:.2f}-{step}-{consumed_samples}";
  std::string name = "megatron_gpt";       ///< exp_manager.name: checkpoints/<name>.nemo
  bool save_nemo_on_train_end = false;     ///< checkpoint_callback_params: a .nemo of the model at the end
  bool always_save_nemo = false;           ///< ... and after every checkpoint save
  bool create_tensorboard_logger = true;   ///< false: no tfevents file
  bool log_step_timing = true;             ///< false: no train_step_timing scalars
  /// exp_manager.create_wandb_logger with wandb_logger_kwargs (an offline W&B run, train/wandb.h).
  std::optional<WandbOptions> wandb;
};

struct TrainingConfig {
  /// The model family (model::ModelFamilyRegistry) the default model factory builds.
  std::string model_family = "gpt";
  /// GPT's config; for another family only its shared fields (precision, tensor_model_parallel_size,
  /// seq_length, vocab_size) are set and family_config holds the family's own config.
  model::GptConfig model;
  /// The family's config JSON (model::Model::config_json form) for families other than gpt; null:
  /// the model is built from `model`.
  nlohmann::json family_config;
  std::int64_t micro_batch_size = 1;       ///< model.micro_batch_size
  std::int64_t global_batch_size = 1;      ///< model.global_batch_size
  std::int64_t max_steps = 0;              ///< trainer.max_steps
  bool enable_progress_bar = true;         ///< trainer.enable_progress_bar (stderr, terminals only)
  double max_time_seconds = 0.0;           ///< trainer.max_time ("DD:HH:MM:SS"), 0: none
  std::int64_t val_check_interval = 0;     ///< trainer.val_check_interval (steps; 0: never)
  double limit_val_batches = 0.0;          ///< trainer.limit_val_batches
  bool limit_val_batches_is_fraction = false;  ///< true when given as a float <= 1.0
  std::int64_t limit_test_batches = 0;
  std::int64_t log_every_n_steps = 10;
  double gradient_clip_val = 0.0;          ///< 0: no clipping
  /// This many steps in a row with non-finite gradients (a NaN/inf loss; fp16 backs its loss
  /// scale off in well under 64) stop the run with an error, without saving over the checkpoints.
  std::int64_t max_consecutive_nonfinite_steps = 64;
  int num_nodes = 1;
  int devices = 1;
  int pipeline_model_parallel_size = 1;
  int virtual_pipeline_model_parallel_size = 1;  ///< model.virtual_pipeline_model_parallel_size (null: 1)
  bool sequence_parallel = false;          ///< model.sequence_parallel (ignored at TP 1, as NeMo)
  /// Data-parallel gradient bucket size in MB of fp32 gradients (model.grad_allreduce_chunk_size_mb,
  /// or model.optim.bucket_cap_mb for distributed_fused_adam).
  double grad_bucket_mb = 125.0;
  OptimizerConfig optim;
  LrScheduleConfig sched;
  LossScalerConfig loss_scaler;
  std::uint64_t seed = 1234;               ///< model.seed
  DataConfig data;
  ExpManagerConfig exp_manager;
  std::map<std::string, std::string> tokenizer;  ///< model.tokenizer.* recorded in checkpoints
  /// The stage config's complete model: section, resolved (checkpoint metadata "model_config");
  /// null when the config was not bound from a stage config (tests, benchmarks).
  nlohmann::json model_config;
  std::string hparams_yaml;                ///< text of results/hparams.yaml (empty: derived from model)
  /// trainer.accelerator (cpu, gpu, auto; absent: auto) and where it was written. The program
  /// resolves it to a device (ops::select_device) and gives the trainer that device's context.
  ops::DeviceRequest accelerator;
  std::optional<double> peak_tflops_per_device;  ///< for MFU: the device's peak (ops/peak_throughput.h); unknown on CPUs
  int cpu_threads = 0;                     ///< OpenMP threads of the CPU ops (0: default; the program's OpContext uses it)

  int world_size() const { return num_nodes * devices; }
  /// model.tensor_model_parallel_size, kept once: in the model's config (it pads the vocabulary).
  int tensor_model_parallel_size() const { return model.tensor_model_parallel_size; }
  int data_parallel_size() const;
  /// global_batch_size / (micro_batch_size * data-parallel size).
  std::int64_t num_micro_batches() const;
  /// Throws ConfigError naming the keys (batch divisibility, parallel sizes, data prefix, ...).
  /// needs_data false: the batches come from elsewhere (TrainerParts), model.data may be empty.
  void validate(bool needs_data = true) const;
};

/// "DD:HH:MM:SS" (also "HH:MM:SS", or a number of seconds) -> seconds; throws ConfigError.
double parse_max_time(const std::string& text);

}  // namespace bignlp::train
