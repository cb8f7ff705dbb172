// The types and ranges of the keys a worker reads: one schema, checked by the launcher before it
// writes anything (so `trainer.max_steps=abc` fails at `bignlp` time, not after a queue wait) and by
// the worker when it binds its config (train/config_binding.cpp), with the same conversions
// (ConfigView::find<T>) in both places.
//
// Only keys that are present and not null are checked (defaults and "absent means off" stay the
// binding's business); cross-key rules need all their keys. Each problem names the key as an
// override ("training.trainer.max_steps=abc") and where its value came from (file:line, or the
// command-line override that set it).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/config/view.h"

namespace bignlp::config {

enum class KeyType { kInt, kNumber };

struct KeyRule {
  std::string_view key;  ///< relative to the stage config
  KeyType type;
  double min;            ///< lower bound
  bool min_exclusive;    ///< > min rather than >= min
  double max;            ///< upper bound (inclusive unless max_exclusive)
  bool max_exclusive;
};

/// The rules for bignlp-train's training stage (trainer.*, model.*, model.optim.*).
std::span<const KeyRule> training_key_rules();

/// Every problem of `cfg` (a training stage config) against training_key_rules() and the cross-key
/// rules (the warm-up plus constant steps of the LR schedule must fit in trainer.max_steps), one
/// message per problem; empty when there is none.
std::vector<std::string> check_training_keys(const ConfigView& cfg);

}  // namespace bignlp::config
