// The training search as files (docs/hp_tool.md): the plan (base config, candidates, memory
// pruning) written under train_settings.logs, and the collection of the launched candidates' logs
// into final_result/. Launching the candidates is the program's part (bignlp-hp runs `bignlp`).
//
//   <logs>/base_cfg_<size>b.yaml
//   <logs>/candidate_configs/<candidate>.yaml        every candidate that fits
//   <logs>/training_logs/<candidate>/                 each launched run (the launcher's results dir)
//   <logs>/final_result/final_summary_<N>nodes.csv    ranked by time per step
//   <logs>/final_result/failed_jobs_<N>nodes.csv      runs without step times, and pruned candidates
//   <logs>/final_result/optimal_config_<size>b_<N>nodes.yaml   the base config with the winning layout
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/hp/results.h"
#include "bignlp/hp/search.h"

namespace bignlp::hp {

struct PlannedCandidate {
  Candidate candidate;
  std::string name;
  config::ConfigNode config;
  double estimated_gb = 0;  ///< per GPU, GiB
  std::string memory_error;  ///< set when the estimate could not be made
  bool fits = true;
};

struct SearchPlan {
  TrainSettings settings;
  BaseConfig base;
  SearchModel model;
  Grid grid;
  int search_nodes = 1;
  double memory_limit_gb = 80;
  std::vector<PlannedCandidate> candidates;  ///< launch order; `fits` false: pruned
};

/// Base config, grid, candidates and their memory estimates. `templ`: the training template.
SearchPlan plan_search(const TrainSettings& settings, const config::ConfigNode& templ);

/// Writes base_cfg_<size>b.yaml and candidate_configs/<name>.yaml for the candidates that fit;
/// creates training_logs/ and final_result/.
void write_plan(const SearchPlan& plan);

/// The CSV rows of one candidate (its columns; no timing).
ResultRow result_row(const SearchPlan& plan, const PlannedCandidate& c);

struct Collected {
  std::vector<ResultRow> summary;  ///< fastest first
  std::vector<ResultRow> failed;
  std::optional<std::string> best;  ///< candidate name
  std::filesystem::path summary_csv, failed_csv, optimal_config;
};

/// Reads training_logs/<candidate>/log-*.out|err of every fitting candidate that has a results
/// folder, ranks them and writes the final_result files. Candidates never launched (no folder)
/// are left out; pruned ones go to the failed CSV with their estimate.
Collected collect_results(const SearchPlan& plan);

}  // namespace bignlp::hp
