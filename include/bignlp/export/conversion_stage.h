// The conversion stage's worker (conversion=gpt3/convert_gpt3, t5/convert_t5, mt5/convert_mt5):
// a saved stage config -> one .nemo file.
//
// Keys read (formats.md §5.2, the seed configs):
//   run.output_path, run.nemo_file_name      the output: <output_path>/<nemo_file_name> (.nemo)
//   run.*                                    the launcher's (name, nodes, time_limit, ...); not used here
//   model.model_type                         gpt or t5; must match the checkpoint's family (t5/mt5: t5)
//   model.checkpoint_folder                  the training run's checkpoints/ directory
//   model.checkpoint_name                    "latest" (the complete checkpoint with the highest step)
//                                            or a glob over checkpoint names ("megatron_gpt-*last.ckpt";
//                                            a trailing ".ckpt" matches bignlp's directory names,
//                                            which carry none); several matches: the highest step
//   model.hparams_file                       hparams.yaml (its `cfg:` section becomes model_config.yaml,
//                                            with the launcher's edits: tokenizer paths set, activation
//                                            checkpointing nulled, distributed_fused_adam -> fused_adam);
//                                            its shape keys must agree with the checkpoint's
//   model.tensor_model_parallel_size,        the layout of the .nemo (resharded from the checkpoint's
//   model.pipeline_model_parallel_size       when different); model_parallel_size must be their product
//   model.vocab_file, model.merge_file,      tokenizer files packed into the archive (null: the
//   model.tokenizer_model                    checkpoint's)
// Any other key is an error naming it.
#pragma once

#include <filesystem>

#include "bignlp/config/view.h"
#include "bignlp/core/logging.h"

namespace bignlp::exporting {

/// The checkpoint `checkpoint_name` selects in `folder`. Throws DataError naming the folder.
std::filesystem::path select_checkpoint(const std::filesystem::path& folder, const std::string& checkpoint_name);

/// Runs the conversion stage on its config; returns the .nemo written.
std::filesystem::path run_conversion_stage(const config::ConfigView& cfg, const Logger& log);

}  // namespace bignlp::exporting
