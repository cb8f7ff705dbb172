// The prompt_learning stage for GPT (bignlp-train --stage prompt_learning, from the launcher's
// rendered prompt_learning config; tuning.md §3) and the prompt-learnt model files it writes.
//
// bind_prompt_learning reads the stage config (NeMo 1.11's megatron_gpt_prompt_learning keys):
// trainer.*, exp_manager.*, model.optim.* as pre-training; model.language_model_path (the frozen
// base: a bignlp checkpoint directory or a .nemo), model.restore_path (an earlier prompt-learnt
// .nemo whose tasks become existing, frozen tables), existing_tasks, new_tasks, task_templates,
// virtual_prompt_style, p_tuning.*, prompt_tuning.*, data.*; every other model key is refused or
// listed as ignored (model.encoder_seq_length: NeMo takes the base's; see docs/prompt_learning.md).
// trainer.max_steps -1 means max_epochs x floor(examples / global_batch_size) steps.
//
// run_prompt_learning trains with the one train::Trainer (TrainerParts: the PromptModel factory,
// the prompt batch sources and a validation-loss evaluator over the whole validation set), then
// writes model.nemo_path (§3.8): a tar of model_config.yaml (the model section with
// virtual_prompt_style inference, existing_tasks = old + new, new_tasks [], language_model_path
// absolute) and model_weights.ckpt = torch.save({'prompt_table': {'prompt_table.<task>.
// prompt_embeddings.weight': [n, h], 'prompt_table.<task>.indices': [n] int64}}) from the
// checkpoint with the best val_loss (p-tuned tasks: the encoder's output).
#pragma once

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/config/view.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/train/trainer.h"
#include "bignlp/train/training_config.h"
#include "bignlp/tune/prompt_model.h"
#include "bignlp/tune/task_template.h"

namespace bignlp::tune {

struct PromptLearningJob {
  train::TrainingConfig training;
  std::filesystem::path nemo_path;
  std::filesystem::path language_model_path;
  std::optional<std::filesystem::path> restore_path;
  PromptStyle style = PromptStyle::kPTuning;
  std::vector<TaskTemplate> templates;
  std::vector<std::string> existing_tasks, new_tasks;
  std::vector<std::string> init_methods, init_texts;  ///< prompt_tuning.new_prompt_init_methods / _text
  PromptEncoderConfig encoder;
  std::vector<std::filesystem::path> train_files, validation_files;
  bool add_eos = true;
  bool shuffle = true;
  std::int64_t max_epochs = 1;            ///< used when trainer.max_steps is -1
  std::int64_t validation_global_batch_size = 0, validation_micro_batch_size = 0;
  bool validation_drop_last = false;
  config::ConfigNode model_section;       ///< the stage's model: section (model_config.yaml)
};

/// Throws ConfigError with the key path (and file:line) for a bad or unsupported key.
PromptLearningJob bind_prompt_learning(const config::ConfigView& cfg);

struct PromptLearningResult {
  train::TrainResult train;
  std::filesystem::path nemo;
  std::int64_t train_examples = 0, validation_examples = 0;
};

PromptLearningResult run_prompt_learning(const PromptLearningJob& job, const ops::OpContext& ctx,
                                         const parallel::ParallelContext& parallel, const Logger& log,
                                         const std::atomic<int>* stop_flag = nullptr, std::FILE* out = stdout);

/// The frozen base model at `path` (a bignlp checkpoint directory, or a .nemo imported into
/// `scratch`), every parameter frozen; precision overridden when given.
std::unique_ptr<model::Model> load_frozen_base(const std::filesystem::path& path, const ops::OpContext& ctx,
                                               std::optional<model::Precision> precision,
                                               const std::filesystem::path& scratch, const Logger& log,
                                               std::filesystem::path* checkpoint_dir = nullptr);

/// A prompt-learnt model read back from its .nemo, ready for scoring and generation.
struct LoadedPromptModel {
  std::unique_ptr<PromptModel> model;
  std::shared_ptr<const data::Tokenizer> tokenizer;
  std::unique_ptr<PromptTokenizer> prompt_tokenizer;
  std::vector<TaskTemplate> templates;
  std::vector<std::string> tasks;  ///< tasks with tables, in template order
  std::int64_t base_max_length = 0;
  std::unique_ptr<TempDir> scratch;
};

/// Reads `nemo` (written by run_prompt_learning); the base from language_model_path in its
/// model_config.yaml unless `language_model` is given. Throws DataError/ConfigError naming the file.
LoadedPromptModel load_prompt_model(const std::filesystem::path& nemo, const ops::OpContext& ctx,
                                    std::optional<model::Precision> precision,
                                    const std::optional<std::filesystem::path>& language_model, const Logger& log);

/// The task templates of a config's task_templates list (keys under `key`), task ids in order.
std::vector<TaskTemplate> bind_task_templates(const config::ConfigView& cfg, const std::string& key);

}  // namespace bignlp::tune
