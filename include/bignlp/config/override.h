// Override: one parsed command-line override (Hydra's grammar; parse with override_parser.h).
//
//   key=value        change (the key must exist)            training=gpt3/5b  trainer.num_nodes=2
//   +key=value       add (the key must not exist)           +experiment=fast  +trainer.foo=1
//   ++key=value      add or change                          ++trainer.foo=1
//   ~key / ~key=v    delete (v must match the current value)
//   group@pkg=option group selection placed at package pkg
// A value is an element (null, bool, int, float, string, list, dict; "${...}" kept verbatim for
// later resolution) or a sweep (a=1,2 / choice() / range() / interval() / glob()) that only
// --multirun accepts. Whether `key` names a config group or a config key is decided at composition
// time (compose.h), as Hydra does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bignlp/config/node.h"

namespace bignlp::config {

enum class OverrideType { kChange, kAdd, kForceAdd, kDelete, kExtendList };

/// A sweep: the values one --multirun job each gets.
struct Sweep {
  enum class Kind { kSimpleChoice, kChoice, kRange, kInterval, kGlob };
  Kind kind = Kind::kChoice;
  /// Choice/range: the elements in order (range expanded). Empty for interval and glob.
  std::vector<ConfigNode> values;
  /// Each element as it appears in a job's override (Hydra's string form: "1", "[1,2]", "a").
  std::vector<std::string> texts;
  /// kInterval: [start, end).
  double interval_start = 0.0, interval_end = 0.0;
  /// kGlob: patterns over a config group's options.
  std::vector<std::string> glob_include, glob_exclude;
  bool shuffle = false;
  std::vector<std::string> tags;
};

struct Override {
  OverrideType type = OverrideType::kChange;
  /// Key or config group as written, without prefix and package ("trainer.num_nodes", "server/db").
  std::string key;
  /// Text after '@' in the key ("" means the global package); nullopt when absent.
  std::optional<std::string> package;
  /// The value (strings unquoted); null when no value was given (`~key`).
  ConfigNode value;
  /// False for `~key` without "=value".
  bool has_value = false;
  /// Set when the value is a sweep; `value` is then unused.
  std::optional<Sweep> sweep;
  /// The override as typed.
  std::string input;
  /// 1-based position on the command line (0 when not from a command line).
  int index = 0;

  bool is_sweep() const { return sweep.has_value(); }
  bool is_delete() const { return type == OverrideType::kDelete; }
  bool is_add() const { return type == OverrideType::kAdd; }
  bool is_force_add() const { return type == OverrideType::kForceAdd; }
  /// key plus "@package" when a package was given ("db@backup").
  std::string key_element() const;
  /// Overrides of Hydra's own config ("hydra.run.dir=x", "hydra/job_logging=none").
  bool is_hydra_override() const;
  /// The value as Hydra prints it in job overrides ("1", "[a,b]", "'quoted'", "null").
  std::string value_text() const;
};

}  // namespace bignlp::config
