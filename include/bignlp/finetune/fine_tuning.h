// T5/mT5 fine-tuning on text-to-text data (the fine_tuning stage; tuning.md §6): the stage config
// bound to the trainer's TrainingConfig plus the fine-tuning parts, the pre-trained checkpoint
// made ready for the run's layout, and the one trainer loop (train/trainer.h) assembled with
// fine-tuning's batch source, initial weights and validation.
//
//   config        trainer.*, exp_manager.* (monitor validation_<metric>, mode max), model.restore_from_path,
//                 model.{tensor,pipeline}_model_parallel_size, model.hidden_dropout / attention_dropout
//                 (override the pre-trained values), model.data.train_ds / validation_ds, model.optim
//   pre-trained   model.restore_from_path: a bignlp checkpoint directory, a checkpoints/ folder (its
//                 newest checkpoint) or a .nemo file (ours, or an
//                 HF T5/mT5 imported by `bignlp-convert --from hf-t5`); a .nemo is imported into
//                 <results>/pretrained/, a checkpoint of another TP size is resharded there (once,
//                 by rank 0; later runs reuse it)
//   batches       Seq2SeqBatchSource over data::SequenceToSequenceDataset (seq2seq_batches.h)
//   steps         trainer.max_steps, or (max_steps -1) max_epochs x the steps of an epoch
//                 (floor(examples / global batch): drop_last); the LR is constant without optim.sched
//   validation    every val_check_interval steps and at the end (seq2seq_validation.h)
//   checkpoints   the trainer's (resume, top-k by the monitored metric, "-last"); at the end, with
//                 save_nemo_on_train_end, the best checkpoint as <results>/checkpoints/<exp_manager.name>.nemo
// Not built (refused with a message naming the key): pipeline parallelism, several training files
// (concat sampling), metrics other than exact_string_match, megatron_amp_O2.
#pragma once

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/checkpoint/metadata.h"
#include "bignlp/config/view.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/tokenizer.h"
#include "bignlp/core/logging.h"
#include "bignlp/parallel/parallel_context.h"
#include "bignlp/train/trainer.h"
#include "bignlp/train/training_config.h"

namespace bignlp::finetune {

/// model.data.train_ds or model.data.validation_ds.
struct Seq2SeqDataConfig {
  std::vector<std::filesystem::path> src_files, tgt_files;  ///< one pair per dataset
  std::vector<std::string> names;  ///< validation_ds.names (empty: dataloader0, dataloader1, ...)
  std::int64_t global_batch_size = 0;
  std::int64_t micro_batch_size = 0;
  bool shuffle = false;
  std::int64_t max_src_seq_length = 512;
  std::int64_t max_tgt_seq_length = 128;
  bool drop_last = false;
  bool write_predictions_to_file = false;
  std::filesystem::path output_file_path_prefix;
  std::string metric = "exact_string_match";
  /// The name of dataset k in logged keys and prediction files.
  std::string name(std::size_t k) const;
};

struct FineTuningConfig {
  /// Trainer, exp_manager, optimizer, parallel sizes; batch sizes of train_ds. The model family and
  /// config are filled from the pre-trained checkpoint (prepare()).
  train::TrainingConfig training;
  std::optional<std::int64_t> max_epochs;  ///< trainer.max_epochs (used when max_steps is -1)
  std::optional<double> val_check_fraction;  ///< trainer.val_check_interval given as a fraction of an epoch
  std::filesystem::path restore_from_path;
  std::optional<float> hidden_dropout, attention_dropout;
  Seq2SeqDataConfig train_ds, validation_ds;
  std::string task_name;  ///< run.task_name
  std::string nemo_name;  ///< exp_manager.name: <results>/checkpoints/<nemo_name>.nemo
  bool save_nemo_on_train_end = true;
  nlohmann::json model_section;  ///< the stage config's model: section (merged into the checkpoint's)
};

/// The fine_tuning stage config (bignlp-train --stage fine_tuning). Throws ConfigError naming the
/// key (file:line when known) for refused or malformed values and for keys nobody reads.
FineTuningConfig bind_fine_tuning_config(const config::ConfigView& cfg);

/// The pre-trained checkpoint of the run in the run's TP x PP layout (see the file comment):
/// restore_from_path itself, or its import/reshard under <results>/pretrained/. Collective over
/// the world (rank 0 converts, the others wait).
std::filesystem::path prepare_pretrained(const FineTuningConfig& config, const parallel::ParallelContext& parallel,
                                         const Logger& log);

/// model.data.train_ds / validation_ds at `section` (refusals name the key).
Seq2SeqDataConfig bind_seq2seq_data(const config::ConfigView& cfg, const std::string& section, bool validation);

/// The tokenizer a checkpoint's metadata names and its T5 layout (num_sentinel_tokens from the
/// recorded model config, default 100). Throws DataError naming the checkpoint.
struct TokenizerAndVocab {
  std::shared_ptr<const data::Tokenizer> tokenizer;
  std::shared_ptr<const data::T5Vocabulary> vocab;
};
TokenizerAndVocab tokenizer_of(const checkpoint::CheckpointState& state, const std::filesystem::path& checkpoint_dir);

/// Runs `fn` on rank 0 while the others wait at a barrier (an error is rethrown on rank 0 after it).
void run_on_rank0(const parallel::ParallelContext& parallel, const std::function<void()>& fn);

/// Runs the fine-tuning (every rank calls it): returns the trainer's result.
train::TrainResult run_fine_tuning(FineTuningConfig config, const Logger& log, const ops::OpContext& ctx,
                                   const parallel::ParallelContext& parallel, const std::atomic<int>* stop_flag,
                                   std::FILE* out = stdout);

}  // namespace bignlp::finetune
