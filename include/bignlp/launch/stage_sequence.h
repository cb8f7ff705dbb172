// The stage sequence: what `bignlp` does with a composed config.
//
// For each entry of `stages`, in order: pick the stage implementation (stage name x model family
// of the chosen option), resolve and validate its config. Only when every stage is valid does
// anything get written: then, stage by stage, the resolved config goes to
// <run.results_dir>/<run.name>_hydra.yaml (no interpolation left), the command line to
// launcher_cmd.log, each job's script to <dir>/<job name>_submission.sh, and the job is
// submitted (or run, for local and BCP), depending on the job before it: the previous stage's
// last job with `stage_dependency` (afterok by default), the previous step of the same stage with
// aftercorr (arrays over the same indices) or afterok. A submission that fails removes the
// script it was given and reports the jobs already submitted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "bignlp/config/compose.h"
#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"
#include "bignlp/core/logging.h"
#include "bignlp/launch/local_executor.h"
#include "bignlp/launch/renderer.h"
#include "bignlp/launch/submitter.h"

namespace bignlp::launch {

/// The most tasks one job may start with cluster_type=local.
inline constexpr int kMaxLocalTasks = 64;

struct StageSequenceRequest {
  const config::ConfigNode& config;            ///< the composed config, interpolations unresolved
  const config::ResolverRegistry& resolvers;
  std::map<std::string, std::string> choices;  ///< config group -> chosen option ("training" -> "gpt3/5b")
  std::vector<std::string> command_line;       ///< argv, recorded in launcher_cmd.log
  /// Options of a config group, for messages ("fine_tuning has no config; choose one of ...").
  std::function<std::vector<std::string>(const std::string& group)> list_options;
};

struct StageSequenceOptions {
  TemplateSet templates = TemplateSet::builtin();
  /// Probe for required inputs (default: the file exists).
  std::function<bool(const std::filesystem::path&)> exists;
  /// Used instead of the submitter the config asks for (tests).
  Submitter* submitter = nullptr;
  std::uint64_t first_local_id = 1;  ///< first local job id (cluster_type=local)
  LocalExecutorOptions local;
  std::string sbatch = "sbatch";     ///< the sbatch program
  std::string squeue = "squeue";     ///< the squeue program (jobs still queued in a results folder)
  /// Submit even when a job of the same name submitted from the same results folder is still
  /// pending or running (bignlp --force).
  bool force = false;
  /// Print each listed stage's per-GPU memory estimate instead; plan, write and submit nothing
  /// (bignlp --explain-memory).
  bool explain_memory = false;
};

/// One job that was written and submitted (or run).
struct LaunchedJob {
  std::string stage;
  std::string step;
  std::string job_id;  ///< empty when the cluster gives none (BCP)
  std::filesystem::path script;
  std::filesystem::path config_file;
};

struct StageSequenceResult {
  std::vector<LaunchedJob> jobs;
  std::vector<std::string> warnings;
  bool dry_run = false;
};

/// Runs the stages; prints what it wrote and submitted to `out`, warnings through `logger`.
/// Throws ConfigError (nothing written), RenderError, SubmitError or JobFailedError.
StageSequenceResult run_stage_sequence(const StageSequenceRequest& request, const StageSequenceOptions& options,
                                       const Logger& logger, std::ostream& out);

/// run_stage_sequence() for a composed config (what `bignlp` calls): the resolvers of the
/// composition plus `bignlp_root` and `bignlp_bin_dir`, its group choices, and the options of its
/// search path.
StageSequenceResult run_composed(const config::ComposeResult& composed, const std::vector<std::string>& command_line,
                                 const std::filesystem::path& tree_root, const std::filesystem::path& bin_dir,
                                 const StageSequenceOptions& options, const Logger& logger, std::ostream& out);

/// The command line as launcher_cmd.log records it: each word shell-quoted, joined by " \\\n  ".
std::string format_command_line(const std::vector<std::string>& argv);

/// Adds the launcher's resolvers to `resolvers`: `${bignlp_root:}` (the bignlp tree `root`) and
/// `${bignlp_bin_dir:}` (`bin_dir`: the folder of the running bignlp, where its workers are;
/// default <root>/build/bin).
void register_launch_resolvers(config::ResolverRegistry& resolvers, const std::filesystem::path& root,
                               const std::filesystem::path& bin_dir = {});

/// The bignlp tree a program belongs to, from its path: <root>/build*/bin/<program> -> <root>
/// (when <root>/conf/config.yaml exists), else the folder above bin/.
std::filesystem::path bignlp_tree_root(const std::filesystem::path& program);

}  // namespace bignlp::launch
