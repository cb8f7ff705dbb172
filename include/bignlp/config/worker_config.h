// The config entry of worker programs (bignlp-train, bignlp-preprocess, ...).
//
// The launcher saves each stage's resolved config as <results_dir>/<run.name>_hydra.yaml and runs
//   bignlp-train --config-path <results_dir> --config-name <run.name>_hydra.yaml [OVERRIDE ...]
// A worker's main() does:
//
//   std::vector<std::string> args(argv + 1, argv + argc);
//   config::WorkerConfigArgs cfg_args = config::extract_worker_config_args(args);
//   // `args` now holds only the program's own flags, in order: parse them (CLI11 etc.).
//   config::ConfigNode root = config::load_worker_config(cfg_args);
//   config::ConfigView cfg(root);
//   int tp = cfg.get<int>("model.tensor_model_parallel_size");
//   ... cfg.check_all_used("the training config");
//
// Overrides use Hydra's grammar and error messages (key=v must exist, +key=v adds, ++key=v either,
// ~key deletes); there are no config groups in a saved stage config, so group syntax (key@pkg=v)
// is rejected. After the overrides, interpolations are resolved (a saved config normally has none
// left; an override may add one such as +rank=${oc.env:RANK}).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"

namespace bignlp::config {

struct WorkerConfigArgs {
  std::filesystem::path config_path;   ///< --config-path DIR (also -cp, --config-path=DIR)
  std::string config_name;             ///< --config-name NAME (also -cn; ".yaml" optional)
  std::vector<std::string> overrides;  ///< positional arguments in Hydra's override grammar
};

/// Removes the config arguments from `args` and returns them; the program's own flags stay in
/// `args` in their order. An argument is an override when it does not start with '-' and contains
/// '=' or starts with '~' (a program flag whose value contains '=' must be written --flag=value).
/// Throws UsageError when --config-path/--config-name lack a value.
WorkerConfigArgs extract_worker_config_args(std::vector<std::string>& args);

/// True when `args` name a stage config (--config-path/--config-name, -cp/-cn): the programs that
/// also take plain flags run their stage only then, so a flag value containing '=' (every training
/// checkpoint name: "...val_loss=2.35-...") is never taken for an override.
bool names_worker_config(const std::vector<std::string>& args);

/// Loads DIR/NAME (NAME with or without ".yaml"), applies the overrides in order with Hydra's
/// rules and messages, and resolves interpolations with `resolvers` (built-ins when null).
/// Throws UsageError when --config-name is missing, ConfigError/OverrideError/IoError otherwise.
ConfigNode load_worker_config(const WorkerConfigArgs& args, const ResolverRegistry* resolvers = nullptr);

}  // namespace bignlp::config
