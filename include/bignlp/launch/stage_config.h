// StageConfig: typed reads of the launcher's own keys in a resolved stage config.
//
// The launcher reads a few keys of each stage (run.*, trainer.num_nodes, the parallel sizes,
// ...); the workers read the rest from the saved config. Reads here never insert, convert only
// what is unambiguous (an int for an int, any scalar for text), and fail with a ConfigError that
// names the full key path as the user writes it in an override ("training.model.micro_batch_size")
// and where the value came from (file:line, or the override). `null` counts as absent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/node.h"

namespace bignlp::launch {

class StageConfig {
 public:
  /// `stage` is the top-level key the config lives under ("training"); `resolved` has no "${".
  StageConfig(std::string stage, config::ConfigNode resolved);

  const std::string& stage() const { return stage_; }
  const config::ConfigNode& node() const { return node_; }

  /// "training.model.micro_batch_size" for "model.micro_batch_size".
  std::string key(std::string_view path) const;
  /// The key and its value as an override would write it: "training.trainer.num_nodes=20".
  std::string show(std::string_view path) const;
  /// " (conf/training/gpt3/5b.yaml:12:3)" or " (override #2)"; empty when unknown.
  std::string origin(std::string_view path) const;

  /// Present and not null.
  bool has(std::string_view path) const;
  std::int64_t get_int(std::string_view path) const;
  std::optional<std::int64_t> opt_int(std::string_view path) const;
  bool get_bool(std::string_view path) const;
  bool opt_bool(std::string_view path, bool fallback) const;
  /// Any scalar as text (ints as digits, bools as true/false); containers are errors.
  std::string get_string(std::string_view path) const;
  std::optional<std::string> opt_string(std::string_view path) const;
  /// A list of scalars as text, null entries dropped; absent or null gives an empty list.
  std::vector<std::string> string_list(std::string_view path) const;

 private:
  const config::ConfigNode& at(std::string_view path) const;
  [[noreturn]] void fail(std::string_view path, const std::string& message) const;

  std::string stage_;
  config::ConfigNode node_;
};

/// Text of a scalar node as a config value reads: "20", "true", "1e-05", "gpt3_5b"; nullopt for
/// null and containers.
std::optional<std::string> scalar_text(const config::ConfigNode& node);

}  // namespace bignlp::launch
