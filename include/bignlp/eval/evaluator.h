// Running the zero-shot tasks (eval/tasks.h) on a model: tokenizing each task's text requests the
// way lm-eval does, scoring them (eval/loglikelihood.h, any TP x PP layout), caching the results,
// and reporting metrics in lm-eval's JSON shape and as a plain table.
//
// Tokenization: the context and the continuation are tokenized separately and concatenated; an
// empty context becomes the end-of-text token. WikiText articles are scored with lm-eval's rolling
// windows (max length L = the model's positions, context_len 1): the first window predicts
// t[0:L] from [EOT] + t[0:L-1], each next one the next <= L tokens from the L tokens before its
// last target; the windows' log-likelihoods are summed per article.
// Cache: <cache_dir>/<task>-<style>-<model key>.jsonl, one line per scored request keyed by a hash
// of its token ids, appended after each batch by rank 0 (a torn last line is ignored), read by
// every rank before scoring, so an interrupted run resumes where it stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/core/logging.h"
#include "bignlp/data/tokenizer.h"
#include "bignlp/eval/loglikelihood.h"
#include "bignlp/eval/tasks.h"
#include "bignlp/model/model.h"

namespace bignlp::eval {

struct EvalOptions {
  TaskStyle style = TaskStyle::kLauncher;
  std::int64_t batch_size = 8;
  std::optional<std::int64_t> limit;
  int bootstrap_iters = 100000;
  /// Where the request cache lives (empty: no cache).
  std::filesystem::path cache_dir;
  /// Identifies the model (checkpoint and precision) in cache file names.
  std::string model_key;
  /// This rank writes the cache and draws the progress (rank 0).
  bool is_reporting_rank = true;
  /// Called on all ranks after the cache was read, before scoring (a barrier in multi-rank runs).
  std::function<void()> after_cache_read;
};

struct TaskReport {
  std::string name;
  int version = 0;
  Metrics metrics;
  std::int64_t docs = 0;
  std::int64_t requests = 0;     ///< forward-pass requests (after rolling windows)
  std::int64_t cached = 0;       ///< of them, answered from the cache
  double seconds = 0.0;
};

/// The token-level requests of `task`, and for each document the indices of its requests
/// (WikiText: all windows of the article).
struct TokenizedTask {
  std::vector<LoglikelihoodRequest> requests;
  std::vector<std::vector<std::vector<std::size_t>>> doc_requests;  ///< [doc][text request] -> request indices
};
TokenizedTask tokenize_task(const Task& task, const data::Tokenizer& tokenizer, std::int64_t max_length);

/// Scores `task` and computes its metrics (collective over the model's ranks).
TaskReport evaluate_task(model::Model& model, const data::Tokenizer& tokenizer, const Task& task,
                         const EvalOptions& options, const Logger& log);

/// {"results": {task: {metric: value, ...}}, "versions": {task: version}, "config": config}.
nlohmann::json results_json(const std::vector<TaskReport>& reports, const nlohmann::json& config);

/// The lm-eval table: Task | Version | Metric | Value | | Stderr.
std::string results_table(const std::vector<TaskReport>& reports);

/// 64-bit FNV-1a of a request's tokens (the cache key).
std::uint64_t request_hash(const LoglikelihoodRequest& request);

}  // namespace bignlp::eval
