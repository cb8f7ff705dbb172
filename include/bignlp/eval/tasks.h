// The zero-shot task suite: each task's published file format, its prompts and continuations, and
// its metrics with their standard errors (docs/evaluation.md; facts: formats.md §7).
//
//   load_task(name, data_dir, style)       the task's files  -> documents, each a list of text
//                                          requests (context, continuation) or one rolling text
//   (the caller tokenizes and scores the requests: eval/evaluator.h)
//   compute_metrics(task, outcomes, style) per-request log-likelihoods -> {metric: value, metric_stderr}
//
// TaskStyle picks between the NeMo launcher's fork of lm-evaluation-harness (the default) and
// upstream lm-eval v0.3.0 where they differ: LAMBADA's quote normalisation and context, acc_norm
// by continuation tokens or by characters, the PIQA and BoolQ prompts, RACE's acc_norm, and
// bits_per_byte in nats or bits. Standard errors are lm-eval's: the sample standard deviation over
// sqrt(n) for means, bootstrap (100000 resamples drawn exactly as lm-eval's Python does) for
// LAMBADA's perplexity, none for the WikiText corpus-level perplexities.
// Not here: generation-based tasks (SQuAD exact match / F1 need the inference engine).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bignlp::eval {

enum class TaskStyle {
  kLauncher,  ///< the NeMo launcher's lm-eval fork (default)
  kLmEval,    ///< upstream lm-evaluation-harness v0.3.0
};

/// "launcher" or "lm-eval"; throws ConfigError naming `what` otherwise.
TaskStyle parse_task_style(std::string_view text, std::string_view what = "--task-style");
std::string_view task_style_name(TaskStyle style);

/// The task names, in the launcher's order: lambada, boolq, race, piqa, hellaswag, winogrande,
/// wikitext2, wikitext103.
const std::vector<std::string>& task_names();

/// "all_tasks" or a comma list (also a YAML-style "[a, b]") -> task names; throws ConfigError
/// naming `what` and listing the tasks for an unknown one.
std::vector<std::string> parse_task_list(std::string_view text, std::string_view what = "--tasks");

/// The files a task reads, relative to the data dir, as published (e.g. "lambada_test.jsonl",
/// "RACE/test/high" (a directory of article files)).
std::vector<std::string> task_files(const std::string& task);

/// One log-likelihood request in text: score `continuation` after `context` (an empty context is
/// scored after the end-of-text token).
struct TextRequest {
  std::string context;
  std::string continuation;
};

/// One document of a task.
struct TaskDoc {
  std::vector<TextRequest> requests;   ///< LL tasks: the choices (and RACE's unconditional ones)
  std::string rolling_text;            ///< WikiText: the detokenized article, scored whole
  int gold = 0;                        ///< the correct choice (BoolQ: 1 for yes)
  std::vector<std::int64_t> choice_chars;  ///< character length of each choice (lm-eval acc_norm)
  std::int64_t words = 0, bytes = 0;   ///< WikiText: of the original article
};

enum class TaskKind { kLambada, kMultipleChoice, kBoolq, kWinogrande, kRace, kWikitext };

struct Task {
  std::string name;
  int version = 0;
  TaskKind kind = TaskKind::kMultipleChoice;
  bool reports_acc_norm = false;
  std::vector<TaskDoc> docs;
};

/// Reads `task`'s files under `data_dir` (the first `limit` documents when given). Throws IoError
/// naming the missing file (and the download helper), DataError naming file and line for a
/// malformed record.
Task load_task(const std::string& task, const std::filesystem::path& data_dir, TaskStyle style,
               std::optional<std::int64_t> limit = std::nullopt);

/// The result of one request of a document.
struct RequestOutcome {
  double logprob = 0.0;       ///< summed over the continuation's tokens (WikiText: over the doc)
  bool is_greedy = false;
  std::int64_t tokens = 0;    ///< continuation tokens
};

/// Metrics in report order, each followed by its "<metric>_stderr" when it has one.
using Metrics = std::vector<std::pair<std::string, std::optional<double>>>;

/// `outcomes[d][r]`: request r of doc d (WikiText: one outcome per doc). `bootstrap_iters` as
/// lm-eval's (100000).
Metrics compute_metrics(const Task& task, const std::vector<std::vector<RequestOutcome>>& outcomes, TaskStyle style,
                        int bootstrap_iters = 100000);

// Text functions of the tasks (exposed for tests).

/// lm-eval's wikitext detokenizer.
std::string wikitext_detokenize(std::string text);
/// WikiText articles of a raw file's text (the launcher's docs_for_split).
std::vector<std::string> wikitext_articles(const std::string& raw);
/// HellaSwag's preprocess.
std::string hellaswag_preprocess(std::string_view text);
/// len(re.split(r"\s+", text)).
std::int64_t count_words(std::string_view text);
/// Python's random.Random(seed).choices(range(n), k=n) (indices), for the bootstrap.
std::vector<std::int64_t> python_random_choices(std::uint32_t seed, std::int64_t n, std::int64_t k);
/// lm-eval's bootstrap_stderr of perplexity (exp(-mean)) over `items`.
double bootstrap_perplexity_stderr(const std::vector<double>& items, int iters);

}  // namespace bignlp::eval
