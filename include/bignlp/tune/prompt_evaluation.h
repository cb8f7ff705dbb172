// Evaluation of a prompt-learnt GPT (evaluation=prompt_gpt3/squad; tuning.md §5.1): the launcher's
// eval-harness task "prompt" on a prompt-learning jsonl.
//
// Each document becomes its training ids (task template, add_eos, answer_start); context =
// ids[:answer_start] (virtual tokens included), continuation = ids[answer_start:] without the EOS
// (the " " + first answer). tokens = (context ++ continuation)[-(max_len + 1):] are scored with
// the prompt tables (virtual id k -> row k of the document's task):
//   ll        = sum of log p(continuation tokens)
//   is_greedy = every continuation token is the argmax
//   acc = mean(is_greedy); ppl = exp(-mean(ll)) (a per-example, not per-token, perplexity);
//   acc_stderr = sample std / sqrt(n); ppl_stderr = bootstrap (1000 resamples, seed 1234).
// metrics.json: {"prompt": {"ppl", "ppl_stderr", "acc", "acc_stderr"}}.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/tune/prompt_learning.h"

namespace bignlp::tune {

struct PromptEvalResult {
  std::int64_t examples = 0, skipped = 0;
  double acc = 0.0, acc_stderr = 0.0, ppl = 0.0, ppl_stderr = 0.0;
  std::vector<double> ll;         ///< per example
  std::vector<bool> is_greedy;    ///< per example
  nlohmann::json metrics_json() const;
};

/// Scores every document of `files` with `m` in batches of `batch_size`.
PromptEvalResult evaluate_prompt_model(LoadedPromptModel& m, const std::vector<std::filesystem::path>& files,
                                       std::int64_t batch_size);

}  // namespace bignlp::tune
