// The training search's settings (the `search_config` preset's train_settings), the base config
// (docs/hp_tool.md §3) and the candidate training configs built from it (§4.4).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/config/view.h"
#include "bignlp/hp/grid.h"
#include "bignlp/hp/model_size.h"

namespace bignlp::hp {

/// train_settings of a search_config preset, checked.
struct TrainSettings {
  Family family = Family::kGpt3;
  std::optional<double> model_size_in_b;  ///< nullopt: recommend one from the budget
  std::string size_label;                 ///< the size as the preset writes it ("5", "0.126")
  int num_nodes = 1;
  int gpus_per_node = 8;
  int gpu_memory_gb = 80;
  std::optional<double> max_training_days;
  int limit_search_runs = 100;
  int output_top_n = 10;
  int max_steps_per_run = 50;
  int max_minutes_per_run = 10;
  double tflops_per_gpu = 140;
  double num_tokens_in_b = 300;
  int vocab_size = 51200;
  int seq_length = 2048;
  std::optional<std::string> custom_config;  ///< a training config to start from (its batch and layout kept)
  std::filesystem::path logs;
  std::optional<int> search_num_nodes;       ///< override_search_num_nodes; nullopt: num_nodes
  GridOverrides grid;
  /// Memory pruning: candidates whose estimate exceeds this many GB per GPU are not launched;
  /// nullopt: gpu_memory_gb.
  std::optional<double> memory_limit_gb;
};

/// Reads `<view>.train_settings` for the model `family_name` ("gpt3", ...). Every key is checked
/// and named in errors ("search_config.train_settings.num_nodes=0 ...").
TrainSettings read_train_settings(const config::ConfigView& search, const std::string& family_name);

/// "{d}-{h:02}:00:00" with d = int(days), h = int(24 (days - d)).
std::string format_time_limit(double days);
/// One hour less than the limit plus 30 minutes: "{d}:{h:02}:30:00" (days:hours:minutes:seconds).
std::string format_max_time(double days);
/// A candidate's Slurm limit for `minutes`: "D-HH:MM:00" (the reference formats minutes as if they
/// were seconds; docs/hp_tool.md lists the difference).
std::string format_run_time_limit(int minutes);

/// The model size and the base config built from a training template.
struct BaseConfig {
  double size_in_b = 0;
  std::string size_label;
  std::optional<double> estimated_days;  ///< when the size was given
  ModelSizeParams params;                ///< layers/hidden/heads/ffn/kv/lr (from custom_config when set)
  GbsTpPp batch;                         ///< GBS and the suggested TP/PP
  config::ConfigNode config;             ///< the training config (our conf/training layout)
  std::string summary;                   ///< the one-line size/days/GPUs/tokens/TFLOPS report
};

/// Recommends the size when train_settings.model_size_in_b is null, then fills `templ` (a training
/// config of the family, e.g. conf/training/gpt3/126m.yaml, or custom_config) with §3.1's fields.
BaseConfig generate_base_config(const TrainSettings& settings, const config::ConfigNode& templ);

/// The candidate training config: the base config with the candidate's layout, trainer.num_nodes =
/// `nodes`, max_steps = val_check_interval = max_steps_per_run, the run's name and time limit.
config::ConfigNode candidate_config(const BaseConfig& base, const TrainSettings& settings, const SearchModel& model,
                                    int nodes, const Candidate& c);

/// The search model (family, size, layers, heads, GBS, seq, checkpoint method) of a base config.
SearchModel search_model(const BaseConfig& base, const TrainSettings& settings);

}  // namespace bignlp::hp
