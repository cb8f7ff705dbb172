// Seq2SeqValidation: fine-tuning's validation step (tuning.md §6.4) over one or more
// text-to-text validation sets, on every rank of the run.
//
// Per set, in global batches of validation_ds.global_batch_size (the last one short; at most
// trainer.limit_val_batches of them) split into micro-batches of validation_ds.micro_batch_size,
// micro-batch j of a global batch on data-parallel rank j % DP:
//   loss      Model::evaluate (no dropout), the mean over micro-batches;
//   decoding  greedy, 30 new tokens from the decoder start token (no early stop), through the
//             inference engine;
//   text      ids cut at the first EOS, the T5 vocabulary's special ids dropped, detokenised; applied
//             to predictions, labels (tgt[1:]) and inputs (src);
//   metric    exact_string_match = mean(pred == label) over the set, a fraction in [0, 1], no
//             normalisation.
// The aggregates validation_loss and validation_exact_string_match are the unweighted means over
// the sets (a non-finite aggregate becomes 0.0, monitor mode max). One line per validation on the
// run's stdout: "validation global_step=N validation_loss=... validation_exact_string_match=..."
// plus the per-set keys validation_loss_<name> and validation_exact_string_match_<name>.
// With write_predictions_to_file, rank 0 writes
// <output_file_path_prefix>_validation_<name>_inputs_preds_labels.json per set:
// {"inputs": [...], "preds": [...], "labels": [...]} as Python's json.dump writes it (", " and ": "
// separators, non-ASCII as \uXXXX), rows in data-parallel rank order, then batch order.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/core/logging.h"
#include "bignlp/data/sequence_to_sequence_dataset.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/tokenizer.h"
#include "bignlp/model/model.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::finetune {

struct ValidationSet {
  std::string name;
  std::shared_ptr<const data::SequenceToSequenceDataset> data;
};

struct Seq2SeqValidationOptions {
  std::int64_t micro_batch_size = 16;
  std::int64_t global_batch_size = 128;
  double limit_val_batches = 1.0;
  bool limit_val_batches_is_fraction = true;
  std::int32_t pad = 0;
  int max_decode_tokens = 30;
  bool write_predictions_to_file = false;
  std::filesystem::path output_file_path_prefix;
};

struct Seq2SeqValidationResult {
  double loss = 0.0;                         ///< validation_loss (mean over sets)
  std::optional<double> exact_string_match;  ///< validation_exact_string_match (mean over sets)
  std::vector<double> set_losses, set_exact_string_match;
  /// Per set (this rank's rows on DP > 1; all rows on rank 0 of one data-parallel group).
  std::vector<std::vector<std::string>> inputs, preds, labels;
};

class Seq2SeqValidation {
 public:
  Seq2SeqValidation(std::vector<ValidationSet> sets, Seq2SeqValidationOptions options,
                    std::shared_ptr<const data::Tokenizer> tokenizer, std::shared_ptr<const data::T5Vocabulary> vocab,
                    const parallel::ParallelContext& parallel, const Logger& log, std::FILE* out);

  /// Validates `model` (collective over the run's ranks); prints the line on rank 0 of the world.
  Seq2SeqValidationResult run(model::Model& model, std::int64_t global_step);

  /// The text of token ids: cut at the first EOS, special ids dropped, detokenised.
  std::string text_of(std::span<const std::int32_t> ids) const;

 private:
  std::vector<ValidationSet> sets_;
  Seq2SeqValidationOptions options_;
  std::shared_ptr<const data::Tokenizer> tokenizer_;
  std::shared_ptr<const data::T5Vocabulary> vocab_;
  parallel::ParallelContext parallel_;
  Logger log_;
  std::FILE* out_;
};

/// Python's json.dumps(text) (ensure_ascii: \uXXXX escapes, surrogate pairs above the BMP).
std::string python_json_string(const std::string& text);

}  // namespace bignlp::finetune
