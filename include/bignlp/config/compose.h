// Composition: from --config-path/--config-name/--config-dir and overrides to one config, as
// Hydra 1.3 does it (hydra/_internal/config_loader_impl.py).
//
//   1. parse overrides; sweeps need --multirun (compose_multirun expands them, cartesian product,
//      the last sweep varies fastest);
//   2. build the defaults list (defaults_list.h) — group overrides act here, and must all be used;
//   3. merge the configs in order, each embedded at its package; strip every `defaults` key;
//   4. apply the config overrides in command-line order with the root in struct mode
//      (apply_override: key=v must exist, +key=v must not, ++key=v either, ~key deletes);
//   5. record hydra.runtime.choices and hydra.overrides.task, split off the `hydra` node.
// Values are not resolved: call ComposeResult::resolved() or resolve_in_place with resolvers().
//
// Example:
//   ComposeOptions opt;                       // conf/config.yaml by default
//   opt.overrides = {"training=gpt3/5b", "training.trainer.num_nodes=2"};
//   ComposeResult r = compose(opt);
//   ConfigNode cfg = r.resolved();            // ${...} evaluated, hydra:/now: resolvers included
//   int64_t nodes = cfg.at("training.trainer.num_nodes").as_int();
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/defaults_list.h"
#include "bignlp/config/interpolate.h"
#include "bignlp/config/node.h"
#include "bignlp/config/override.h"
#include "bignlp/config/repository.h"

namespace bignlp::config {

struct ComposeOptions {
  /// Primary config directory (--config-path); relative paths are relative to the working directory.
  std::filesystem::path config_path = "conf";
  /// Primary config name (--config-name), without ".yaml" (a trailing ".yaml" is tolerated).
  std::string config_name = "config";
  /// Extra search directories (--config-dir), searched after config_path.
  std::vector<std::filesystem::path> config_dirs;
  /// Overrides as typed on the command line.
  std::vector<std::string> overrides;
  /// Tolerate unchosen "???" groups (for --help).
  bool skip_missing = false;
};

struct ComposeResult {
  /// The composed config without the `hydra` node; unresolved (interpolations verbatim).
  ConfigNode config;
  /// The `hydra` node: runtime.choices, overrides.task, job, run dir, ...
  ConfigNode hydra;
  /// The final choice of every config group, in discovery order ("training" -> "gpt3/5b").
  std::vector<GroupChoice> choices;
  /// The configs merged, in order, and the tree they came from.
  std::vector<ResultDefault> defaults;
  DefaultsTreeNode defaults_tree;
  std::vector<SearchPathEntry> search_path;
  /// All parsed overrides (group and config overrides), in command-line order.
  std::vector<Override> overrides;
  /// Non-fatal messages (e.g. "Defaults list is missing `_self_`").
  std::vector<std::string> warnings;

  /// The choice for `group` (nullopt when unknown or disabled).
  std::optional<std::string> choice(std::string_view group) const;
  /// Built-in resolvers plus `hydra:` (reads this result's hydra node) and `now:`.
  ResolverRegistry resolvers() const;
  /// A copy of `config` with every interpolation resolved (OmegaConf.resolve semantics, as
  /// `bignlp --cfg job --resolve` prints it). Throws InterpolationError.
  ConfigNode resolved() const;
};

/// Composes one config. Throws ConfigError / OverrideError with Hydra's messages.
ComposeResult compose(const ComposeOptions& options);

/// One job of a --multirun sweep.
struct SweepJob {
  /// The job's overrides as Hydra prints them ("a=1", "training=gpt3/5b").
  std::vector<std::string> overrides;
  ComposeResult result;
};

/// Expands sweeps (a=1,2 / choice / range / glob) into jobs and composes each. Without sweeps
/// this is one job. Interval sweeps and sweeps over hydra.* are refused.
std::vector<SweepJob> compose_multirun(const ComposeOptions& options);

/// Just the job override lists of a sweep (no composition): what compose_multirun would run.
std::vector<std::vector<Override>> expand_sweeps(const std::vector<Override>& overrides, const ConfigRepository& repo);

/// Applies one config override (not a group override) to `root` as Hydra does after composition:
/// struct mode, `key=v` needs an existing key, `+key=v` a free one, `++key=v` either, `~key[=v]`
/// deletes. Dict values merge into dicts, lists replace. The new values get the override's
/// provenance (with the replaced value as `previous`). Throws OverrideError in Hydra's wording.
/// `resolvers` is used to read values that are interpolations (for `~key=v` and `+key`).
void apply_override(ConfigNode& root, const Override& override, const ResolverRegistry& resolvers);

/// Registers `hydra:` (OmegaConf.select on `hydra`) and `now:` (strftime of the current time).
void add_hydra_resolvers(ResolverRegistry& registry, const ConfigNode& hydra);

}  // namespace bignlp::config
