// Generation-based evaluation: greedy decoding on the inference engine (infer/engine.h, any family
// that decodes: GPT, T5/mT5) scored against reference answers with SQuAD exact match / F1 and
// NeMo's exact_string_match. What fine-tuning validation, prompt-learning evaluation and
// `bignlp-evaluate --generate` call.
//
// Metrics (formats.md §7.4, tuning.md §6.4, §7.3):
//   normalize_answer(s)  = the official SQuAD v1.1 normalisation, in this order: lower-case (Unicode,
//                          as Python's str.lower()), delete ASCII string.punctuation, replace the
//                          whole words a / an / the (Python's `\b(a|an|the)\b`, Unicode word
//                          characters) by a space, split on whitespace (Python's str.split()) and
//                          join with single spaces.
//   squad_exact_match    = normalize(pred) == normalize(ref)
//   squad_f1             = 2PR/(P+R) over the multiset intersection of normalized tokens (0 when
//                          nothing is shared, so 0 when either side is empty)
//   exact_string_match   = pred == ref, raw strings (NeMo's ExactStringMatchMetric)
// Over a reference list each metric takes its max (an empty list scores 0). Corpus scores follow
// the SQuAD script: EM and F1 averaged and times 100; exact_string_match a fraction in [0, 1].
// Generation: each item's input runs greedily (top_k 1) for up to max_new_tokens tokens, stopping
// at end_id; the prediction's ids exclude the end token; its text is the detokenized ids after
// dropping `drop_ids` (special tokens). Text inputs and answers are UTF-8.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bignlp/data/tokenizer.h"
#include "bignlp/infer/engine.h"

namespace bignlp::eval {

/// SQuAD v1.1 answer normalisation (see above).
std::string normalize_answer(std::string_view text);
/// 1 when the normalized strings are equal, else 0.
double squad_exact_match(std::string_view prediction, std::string_view reference);
/// Token F1 of the normalized strings, in [0, 1].
double squad_f1(std::string_view prediction, std::string_view reference);
/// 1 when the raw strings are equal, else 0 (no normalisation).
double exact_string_match(std::string_view prediction, std::string_view reference);
/// max over `references` of metric(prediction, reference); 0 for no references.
double max_over_references(double (*metric)(std::string_view, std::string_view), std::string_view prediction,
                           const std::vector<std::string>& references);

/// One generation task item: the model's input (GPT: the context; T5: the encoder input) and the
/// accepted answers.
struct GenerationItem {
  std::vector<std::int32_t> input;
  std::vector<std::string> answers;
};

struct GenerationOptions {
  std::int64_t max_new_tokens = 30;      ///< tokens to generate at most (NeMo: 30 fine-tuning, 40 prompt learning)
  std::optional<std::int32_t> end_id;    ///< generation stops at it (excluded from the prediction)
  std::vector<std::int32_t> drop_ids;    ///< ids removed before detokenizing (special tokens)
  /// Turns prediction ids into text (required).
  std::function<std::string(const std::vector<std::int32_t>&)> detokenize;
};

struct GenerationPrediction {
  std::vector<std::int32_t> ids;  ///< generated ids, up to (excluding) the end id
  std::string text;               ///< detokenized ids (after drop_ids)
  double exact_match = 0.0;       ///< max over the answers, 0 or 1
  double f1 = 0.0;                ///< max over the answers, [0, 1]
  double exact_string_match = 0.0;///< max over the answers, 0 or 1
};

/// Corpus scores as the SQuAD script reports them.
struct GenerationScores {
  double exact_match = 0.0;         ///< mean EM x 100
  double f1 = 0.0;                  ///< mean F1 x 100
  double exact_string_match = 0.0;  ///< mean, in [0, 1]
  std::int64_t total = 0;
};

struct GenerationReport {
  std::vector<GenerationPrediction> predictions;  ///< in item order
  GenerationScores scores;
};

/// Scores of one prediction text against its answers.
GenerationPrediction score_prediction(std::string text, const std::vector<std::string>& answers);
/// Corpus scores of scored predictions (mean over them; zeros for none).
GenerationScores aggregate(const std::vector<GenerationPrediction>& predictions);

/// Greedy-decodes every item on `engine` (its batching; inputs checked as Engine::check does,
/// ConfigError naming the item index) and scores the predictions.
GenerationReport run_generation_task(infer::Engine& engine, const std::vector<GenerationItem>& items,
                                     const GenerationOptions& options);

/// Reads a generation task file (`bignlp-evaluate --generate`): one JSON object per line (blank
/// lines skipped) with "ids": [token ids] or "text": "..." and "answers": [strings] (or one
/// string). Text needs `tokenizer`; with `wrap_bos_eos` (encoder-decoder models, as NeMo's
/// sequence-to-sequence dataset builds its inputs) it becomes [bos] + ids + [eos] where the
/// tokenizer has them. DataError naming the file and line for malformed lines, unknown keys or
/// ids outside [0, vocab).
std::vector<GenerationItem> read_generation_items(const std::filesystem::path& path, const data::Tokenizer* tokenizer,
                                                  std::int64_t vocab, bool wrap_bos_eos);

/// Writes one line per item (atomically): {"ids": [generated], "text": "...", "answers": [...],
/// "exact_match": 0|1, "f1": x, "exact_string_match": 0|1}.
void write_generation_predictions(const std::filesystem::path& path, const std::vector<GenerationItem>& items,
                                  const GenerationReport& report);

/// {"exact_match", "f1", "exact_string_match", "total"}.
nlohmann::json scores_json(const GenerationScores& scores);

}  // namespace bignlp::eval
