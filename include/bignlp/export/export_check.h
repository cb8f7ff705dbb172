// The export stage's accuracy check and benchmark (seed export stage; inference-facts §10.1): the
// exported FasterTransformer repository is loaded back through infer/ft_repository.h and run by
// the inference engine, next to the source checkpoint.
//
// Accuracy: LAMBADA (eval/tasks.h lambada, the launcher style: context and " last word") scored
// with FT's rule: greedy-decode (the runtime's beam width / top-k / top-p, seed 0) as many tokens
// as the label has; a hit when every label token equals the generated token at its position;
// accuracy = hits / N * 100. Also the evaluation library's lambada metrics (acc, ppl, by
// teacher-forced scoring). Both run on the exported model and on the source checkpoint, whose
// weights are first rounded to the export's weight_data_type (what the files hold), both at the
// compute precision of config.pbtxt's data_type, so every number must agree exactly; and a greedy
// generation of `generation_tokens` tokens from the first `generation_prompts` contexts must give
// the same ids. The report goes to output_path (JSON); a disagreement is a RuntimeError after it
// is written. Contexts are cut from the left to fit max_seq_len with the label.
// Benchmark: per batch size B, B random prompts (ids uniform in [0, min(V, 51200)), fixed seed) of
// input_len tokens generate output_len tokens greedily (no end id) through the engine in this
// process (no HTTP server): 2 warm-up runs, then the mean wall time of 5 runs; throughput per
// rank = B / latency * 1000 (one process holds the model). CSV columns as the seed's:
// batch_size,tensor_para_size,pipeline_para_size,input_len,output_len,latency_ms,throughput_per_gpu.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "bignlp/core/logging.h"

namespace bignlp::exporting {

struct AccuracyCheckOptions {
  std::filesystem::path test_data;    ///< lambada_test.jsonl (any name)
  std::filesystem::path output_path;  ///< the JSON report
  std::filesystem::path runtime_ini;  ///< where the runtime settings used are written (empty: not written)
  std::int64_t batch_size = 64;       ///< sequences decoded together
  std::int64_t max_seq_len = 512;     ///< context + label positions (at most the model's)
  int beam_width = 1;
  int top_k = 1;
  float top_p = 0.0f;
  std::optional<std::int64_t> limit;  ///< the first documents only
  std::int64_t generation_prompts = 8, generation_tokens = 16;
  int threads = 0;
};

/// Runs the accuracy check of the model directory `model_dir` (<repo>/<name>) against `source`
/// (a bignlp checkpoint); returns the report (also written to output_path).
nlohmann::json check_export_accuracy(const std::filesystem::path& source, const std::filesystem::path& model_dir,
                                     const AccuracyCheckOptions& options, const Logger& log);

struct BenchmarkOptions {
  std::int64_t input_len = 60, output_len = 20;
  std::vector<std::int64_t> batch_sizes{1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::filesystem::path output_csv;
  int warmup = 2, runs = 5;
};

/// Runs the benchmark on the model directory `model_dir`; returns the CSV text (also written).
std::string benchmark_export(const std::filesystem::path& model_dir, const BenchmarkOptions& options, const Logger& log);

}  // namespace bignlp::exporting
