#include "bignlp/config/worker_keys.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "bignlp/core/error.h"

namespace bignlp::config {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr KeyRule kTrainingRules[] = {
    {"trainer.max_steps", KeyType::kInt, 1, false, kInf, false},
    {"trainer.num_nodes", KeyType::kInt, 1, false, kInf, false},
    {"trainer.devices", KeyType::kInt, 1, false, kInf, false},
    {"trainer.log_every_n_steps", KeyType::kInt, 1, false, kInf, false},
    {"trainer.gradient_clip_val", KeyType::kNumber, 0, false, kInf, false},
    {"model.micro_batch_size", KeyType::kInt, 1, false, kInf, false},
    {"model.global_batch_size", KeyType::kInt, 1, false, kInf, false},
    {"model.tensor_model_parallel_size", KeyType::kInt, 1, false, kInf, false},
    {"model.pipeline_model_parallel_size", KeyType::kInt, 1, false, kInf, false},
    {"model.num_layers", KeyType::kInt, 1, false, kInf, false},
    {"model.hidden_size", KeyType::kInt, 1, false, kInf, false},
    {"model.ffn_hidden_size", KeyType::kInt, 1, false, kInf, false},
    {"model.num_attention_heads", KeyType::kInt, 1, false, kInf, false},
    {"model.encoder_seq_length", KeyType::kInt, 1, false, kInf, false},
    {"model.max_position_embeddings", KeyType::kInt, 1, false, kInf, false},
    {"model.make_vocab_size_divisible_by", KeyType::kInt, 1, false, kInf, false},
    {"model.init_method_std", KeyType::kNumber, 0, false, kInf, false},
    {"model.hidden_dropout", KeyType::kNumber, 0, false, 1, true},
    {"model.attention_dropout", KeyType::kNumber, 0, false, 1, true},
    {"model.optim.lr", KeyType::kNumber, 0, true, kInf, false},
    {"model.optim.weight_decay", KeyType::kNumber, 0, false, kInf, false},
    {"model.optim.sched.warmup_steps", KeyType::kInt, 0, false, kInf, false},
    {"model.optim.sched.constant_steps", KeyType::kInt, 0, false, kInf, false},
    {"model.optim.sched.warmup_ratio", KeyType::kNumber, 0, false, 1, false},
    {"model.optim.sched.constant_ratio", KeyType::kNumber, 0, false, 1, false},
    {"model.optim.sched.min_lr", KeyType::kNumber, 0, false, kInf, false},
};

/// " (file:line:col)" or " (override #1 'a=b')": where the value came from.
std::string source_of(const ConfigView& cfg, std::string_view key) {
  const Provenance* p = cfg.provenance(key);
  return p == nullptr ? std::string() : " (" + p->location() + ")";
}

std::string range_text(const KeyRule& r) {
  const std::string what = r.type == KeyType::kInt ? "an integer" : "a number";
  const std::string lo = fmt::format("{} {}", r.min_exclusive ? ">" : ">=", r.min);
  if (std::isinf(r.max)) return what + " " + lo;
  return fmt::format("{} {} and {} {}", what, lo, r.max_exclusive ? "<" : "<=", r.max);
}

/// The value of `r.key` when present and valid; adds a problem and returns nullopt otherwise.
std::optional<double> checked(const ConfigView& cfg, const KeyRule& r, std::vector<std::string>& problems) {
  if (!cfg.has(r.key)) return std::nullopt;
  double v = 0.0;
  try {
    v = r.type == KeyType::kInt ? static_cast<double>(cfg.get<std::int64_t>(r.key)) : cfg.get<double>(r.key);
  } catch (const ConfigError&) {
    problems.push_back(fmt::format("{}{}: must be {}", cfg.as_override(r.key), source_of(cfg, r.key), range_text(r)));
    return std::nullopt;
  }
  const bool low = r.min_exclusive ? !(v > r.min) : !(v >= r.min);
  const bool high = r.max_exclusive ? !(v < r.max) : !(v <= r.max);
  if (std::isnan(v) || low || high) {
    problems.push_back(fmt::format("{}{}: must be {}", cfg.as_override(r.key), source_of(cfg, r.key), range_text(r)));
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::span<const KeyRule> training_key_rules() { return kTrainingRules; }

std::vector<std::string> check_training_keys(const ConfigView& cfg) {
  std::vector<std::string> problems;
  std::map<std::string_view, double> value;
  for (const KeyRule& r : kTrainingRules)
    if (auto v = checked(cfg, r, problems)) value[r.key] = *v;
  // The LR schedule (train/lr_schedule.cpp): warm-up and constant phases inside max_steps. A ratio
  // takes the place of its step count; a null schedule name is a constant lr (no phases).
  const bool scheduled = cfg.has("model.optim.sched") && cfg.has("model.optim.sched.name");
  if (scheduled && value.count("trainer.max_steps") != 0) {
    const double max_steps = value["trainer.max_steps"];
    std::string wkey, ckey;
    double warmup = 0, constant = 0;
    if (value.count("model.optim.sched.warmup_ratio") != 0) {
      wkey = "model.optim.sched.warmup_ratio";
      warmup = std::floor(value[wkey] * max_steps);
    } else if (value.count("model.optim.sched.warmup_steps") != 0) {
      wkey = "model.optim.sched.warmup_steps";
      warmup = value[wkey];
    }
    if (value.count("model.optim.sched.constant_ratio") != 0) {
      ckey = "model.optim.sched.constant_ratio";
      constant = std::floor(value[ckey] * max_steps);
    } else if (value.count("model.optim.sched.constant_steps") != 0) {
      ckey = "model.optim.sched.constant_steps";
      constant = value[ckey];
    }
    if (warmup + constant > max_steps) {
      std::string parts;
      for (const std::string& k : {wkey, ckey})
        if (!k.empty()) parts += (parts.empty() ? "" : " + ") + cfg.as_override(k) + source_of(cfg, k);
      problems.push_back(fmt::format("{} = {} warm-up + constant steps exceed {}{}: the schedule would never decay",
                                     parts, warmup + constant, cfg.as_override("trainer.max_steps"),
                                     source_of(cfg, "trainer.max_steps")));
    }
  }
  return problems;
}

}  // namespace bignlp::config
