// Collecting the training search's results (docs/hp_tool.md §4.6): the step times our training
// log line reports (docs/architecture.md §4), the model TFLOPS they mean, and the summary CSVs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/hp/model_size.h"

namespace bignlp::hp {

/// The `train_step_timing in s` values of every training step line in `text`, in order.
std::vector<double> parse_step_times(std::string_view text);

/// The mean step time the search ranks by: the first 5 points dropped (warm-up), rounded to 4
/// decimals; nullopt with 6 points or fewer.
std::optional<double> mean_step_time(const std::vector<double>& times);

/// Model FLOPs of one global batch (§4.6): GPT (24Bsh^2 + 4Bs^2h) 3L + 6BshV; BERT; T5 with `layers`
/// the encoder + decoder layers and `seq_dec` the decoder length. V is the tokenizer's vocabulary.
struct FlopsShape {
  Family family = Family::kGpt3;
  double gbs = 0, seq = 0, seq_dec = 0, hidden = 0, layers = 0, ffn = 0, vocab = 0;
};
double model_flops_per_step(const FlopsShape& shape);

/// One row of final_summary_<N>nodes.csv / failed_jobs_<N>nodes.csv.
struct ResultRow {
  std::string model_name;   ///< "gpt3"
  std::string model_size;   ///< "5" (the size label)
  int seq_length = 0;
  int tp = 1, pp = 1, mbs = 1;
  std::optional<int> act_ckpt_layers, act_ckpt_micro_batches, act_ckpt_layers_per_pipeline;
  int num_layers = 0, hidden_size = 0;
  std::optional<int> ffn_hidden_size;
  int gbs = 0, nodes = 0, gpus_per_node = 0;
  std::optional<double> estimated_memory_gb;  ///< the memory model's per-GPU estimate
  // final summary only
  double time_per_step = 0, samples_per_second = 0, tflops_per_gpu = 0, tflops_aggregate = 0;
  std::string config_name;  ///< tp<tp>_pp<pp>_mbs<mbs>_act_<a>_num_mbs_act_<n>_act_per_pipe_<p>
  // failed only
  std::string error_message;
};

/// The header and rows, in the documented column order (plus "Estimated Memory per GPU [GB]" at the end).
std::string summary_csv(const std::vector<ResultRow>& rows);
std::string failed_csv(const std::vector<ResultRow>& rows);

/// Sorts by time per step, fastest first (stable).
void sort_by_time(std::vector<ResultRow>& rows);

}  // namespace bignlp::hp
