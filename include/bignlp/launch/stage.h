// Stage: turns one stage's resolved config into the jobs that run it (StageJobs), after checking
// that the config can work.
//
// A stage is chosen by its name and the model family of the chosen option (stage_registry.h).
// plan() is pure: it reads the resolved stage config and the LaunchSettings, and the file system
// only through StageContext::exists (so required inputs can be checked, and faked in tests). It
// writes nothing. Problems are collected and thrown together as one ConfigError, each naming the
// keys and values involved and a fix; missing inputs are warnings instead in a dry run.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bignlp/config/node.h"
#include "bignlp/config/view.h"
#include "bignlp/launch/job_spec.h"
#include "bignlp/launch/settings.h"

namespace bignlp::launch {

struct StageContext {
  const LaunchSettings& settings;
  /// Stages that run before this one in the same `stages` list (their outputs need not exist yet).
  std::vector<std::string> earlier_stages;
  /// File-system probe for required inputs.
  std::function<bool(const std::filesystem::path&)> exists;

  bool runs_earlier(std::string_view stage) const;
};

/// The jobs of one stage, ready to be rendered.
struct StageJobs {
  std::string stage;                  ///< "training"
  std::string family;                 ///< "gpt3", "t5", "mt5", "generic", ...
  std::string run_name;               ///< run.name
  std::filesystem::path results_dir;  ///< run.results_dir
  std::filesystem::path config_file;  ///< <results_dir>/<run_name>_hydra.yaml
  config::ConfigNode config;          ///< the resolved stage config saved in config_file
  /// Jobs in order; each one after the first waits for the one before it (aftercorr between
  /// arrays over the same indices, else afterok).
  std::vector<JobSpec> jobs;
  std::vector<std::string> warnings;  ///< non-fatal findings (missing inputs in a dry run)
};

/// Collects the problems of one stage config and throws them together.
class Problems {
 public:
  explicit Problems(std::string stage) : stage_(std::move(stage)) {}
  void add(std::string problem) { items_.push_back(std::move(problem)); }
  bool empty() const { return items_.empty(); }
  /// Throws ConfigError "<stage>: N problem(s) ..." listing every problem; no-op when empty.
  void throw_if_any() const;

 private:
  std::string stage_;
  std::vector<std::string> items_;
};

class Stage {
 public:
  virtual ~Stage() = default;
  /// `config` views the stage's config at its top-level key (prefix() "training"), so messages
  /// name keys as an override writes them ("training.model.micro_batch_size").
  virtual StageJobs plan(const config::ConfigView& config, const std::string& family,
                         const StageContext& context) const = 0;
};

}  // namespace bignlp::launch
