#include "bignlp/hp/search.h"

#include <fmt/format.h>

#include <cmath>

#include "bignlp/core/error.h"

namespace bignlp::hp {

using config::ConfigNode;
using config::ConfigView;

namespace {

// A list of ints, or "auto"/null -> nullopt.
std::optional<std::vector<int>> int_list_or_auto(const ConfigView& v, const std::string& key) {
  const auto node = v.find<ConfigNode>(key);
  if (!node) return std::nullopt;
  if (node->is_string() && node->as_string() == "auto") return std::nullopt;
  if (!node->is_list()) {
    throw ConfigError(fmt::format("{}: expected 'auto', null or a list of integers such as [1, 2, 4, 8]",
                                  v.as_override(key)));
  }
  auto out = v.get<std::vector<int>>(key);
  if (out.empty()) throw ConfigError(fmt::format("{}: the list is empty; use auto or list values", v.as_override(key)));
  for (int x : out) {
    if (x < (key == "act_ckpt_layers" ? 0 : 1)) {
      throw ConfigError(fmt::format("{}: {} is not a valid value", v.as_override(key), x));
    }
  }
  return out;
}

std::optional<int> int_or_auto(const ConfigView& v, const std::string& key) {
  const auto node = v.find<ConfigNode>(key);
  if (!node || (node->is_string() && node->as_string() == "auto")) return std::nullopt;
  const int x = v.get<int>(key);
  if (x < 1) throw ConfigError(fmt::format("{} must be at least 1 (or auto)", v.as_override(key)));
  return x;
}

int positive_int(const ConfigView& v, const std::string& key, int min = 1) {
  const int x = v.get<int>(key);
  if (x < min) throw ConfigError(fmt::format("{} must be at least {}", v.as_override(key), min));
  return x;
}

}  // namespace

TrainSettings read_train_settings(const ConfigView& search, const std::string& family_name) {
  const auto family = parse_family(family_name);
  if (!family) {
    throw ConfigError(fmt::format("search_config: '{}' is not a model the search knows (gpt3, t5, mt5, bert)",
                                  family_name));
  }
  const ConfigView v = search.sub("train_settings");
  TrainSettings s;
  s.family = *family;
  if (const auto size = v.find<ConfigNode>("model_size_in_b")) {
    s.model_size_in_b = v.get<double>("model_size_in_b");
    if (!(*s.model_size_in_b > 0)) throw ConfigError(fmt::format("{} must be positive", v.as_override("model_size_in_b")));
    s.size_label = size->is_int() ? fmt::format("{}", size->as_int()) : python_float_str(*s.model_size_in_b);
  }
  s.num_nodes = positive_int(v, "num_nodes");
  s.gpus_per_node = positive_int(v, "gpus_per_node");
  s.gpu_memory_gb = v.get_or<int>("gpu_memory_gb", 80);
  if (s.gpu_memory_gb != 40 && s.gpu_memory_gb != 80) {
    throw ConfigError(fmt::format("{}: the size tables exist for 40 and 80 GB GPUs", v.as_override("gpu_memory_gb")));
  }
  s.max_training_days = v.find<double>("max_training_days");
  if (s.max_training_days && !(*s.max_training_days > 0)) {
    throw ConfigError(fmt::format("{} must be positive", v.as_override("max_training_days")));
  }
  if (!s.model_size_in_b && !s.max_training_days) {
    throw ConfigError(fmt::format("{} and {}: give a model size, or the days to recommend one for",
                                  v.as_override("model_size_in_b"), v.as_override("max_training_days")));
  }
  s.limit_search_runs = positive_int(v, "limit_search_runs");
  s.output_top_n = positive_int(v, "output_top_n");
  s.max_steps_per_run = positive_int(v, "max_steps_per_run");
  // The reference requires 10 minutes or more (a real model's first steps take that long); the CPU
  // demo's tiny runs take seconds, so any positive number is taken.
  s.max_minutes_per_run = positive_int(v, "max_minutes_per_run");
  s.tflops_per_gpu = v.get<double>("tflops_per_gpu");
  if (!(s.tflops_per_gpu > 0)) throw ConfigError(fmt::format("{} must be positive", v.as_override("tflops_per_gpu")));
  s.num_tokens_in_b = v.get<double>("num_tokens_in_b");
  if (!(s.num_tokens_in_b > 0)) throw ConfigError(fmt::format("{} must be positive", v.as_override("num_tokens_in_b")));
  s.vocab_size = positive_int(v, "vocab_size");
  s.seq_length = positive_int(v, "seq_length");
  s.custom_config = v.find<std::string>("custom_config");
  s.logs = v.get<std::string>("logs");
  s.search_num_nodes = int_or_auto(v, "override_search_num_nodes");
  s.grid.tensor_parallel_sizes = int_list_or_auto(v, "tensor_parallel_sizes");
  s.grid.pipeline_parallel_sizes = int_list_or_auto(v, "pipeline_parallel_sizes");
  s.grid.micro_batch_sizes = int_list_or_auto(v, "micro_batch_sizes");
  s.grid.min_model_parallel_size = int_or_auto(v, "min_model_parallel_size");
  s.grid.max_model_parallel_size = int_or_auto(v, "max_model_parallel_size");
  s.grid.act_ckpt_layers = int_list_or_auto(v, "act_ckpt_layers");
  s.memory_limit_gb = v.find<double>("memory_limit_gb");
  if (s.memory_limit_gb && !(*s.memory_limit_gb > 0)) {
    throw ConfigError(fmt::format("{} must be positive (or null: gpu_memory_gb)", v.as_override("memory_limit_gb")));
  }
  v.check_all_used(v.prefix());
  return s;
}

std::string format_time_limit(double days) {
  const int d = static_cast<int>(days);
  const int h = static_cast<int>(24.0 * (days - d));
  return fmt::format("{}-{:02}:00:00", d, h);
}

std::string format_max_time(double days) {
  int d = static_cast<int>(days);
  int h = static_cast<int>(24.0 * (days - d));
  if (h == 0) {
    d -= 1;
    h = 23;
  } else {
    h -= 1;
  }
  if (d < 0) return "00:00:30:00";  // under an hour: half an hour
  return fmt::format("{}:{:02}:30:00", d, h);
}

std::string format_run_time_limit(int minutes) {
  return fmt::format("{}-{:02}:{:02}:00", minutes / 1440, (minutes % 1440) / 60, minutes % 60);
}

namespace {

ConfigNode i(std::int64_t v) { return ConfigNode::integer(v); }
ConfigNode f(double v) { return ConfigNode::floating(v); }
ConfigNode str(std::string v) { return ConfigNode::string(std::move(v)); }

int node_int(const ConfigNode& root, const std::string& path, const std::string& file) {
  const ConfigNode* n = root.find_path(path);
  if (n == nullptr || !n->is_int()) {
    throw ConfigError(fmt::format("{}: {} must be an integer in the custom training config (the search reads it)",
                                  file, path));
  }
  return static_cast<int>(n->as_int());
}

}  // namespace

BaseConfig generate_base_config(const TrainSettings& s, const ConfigNode& templ) {
  BaseConfig b;
  const std::string model = std::string(to_string(s.family));
  const Budget budget{s.num_nodes, s.gpus_per_node, s.tflops_per_gpu, s.num_tokens_in_b};
  const double gpus = double(s.num_nodes) * s.gpus_per_node;
  if (s.model_size_in_b) {
    b.size_in_b = *s.model_size_in_b;
    b.size_label = s.size_label;
    b.estimated_days = estimate_training_days(model, b.size_in_b, budget);
  } else {
    b.size_in_b = *estimate_model_size(model, *s.max_training_days, budget);
    b.size_label = python_float_str(b.size_in_b);
  }
  b.summary = fmt::format("You can train a {}B parameter model in {} days using {} GPUs. This result assumes you are "
                          "training to {}B tokens, and each GPU achieves {} TFLOPS.",
                          b.size_label,
                          b.estimated_days ? fmt::format("{}", *b.estimated_days)
                                           : fmt::format("{}", s.max_training_days.value_or(0)),
                          gpus, s.num_tokens_in_b, s.tflops_per_gpu);

  ConfigNode cfg = templ;
  const bool custom = s.custom_config.has_value();
  const std::string file = s.custom_config.value_or("the training template");
  const bool t5 = is_encoder_decoder(s.family);
  if (custom) {
    b.batch.gbs = node_int(cfg, "model.global_batch_size", file);
    b.batch.tp = node_int(cfg, "model.tensor_model_parallel_size", file);
    b.batch.pp = node_int(cfg, "model.pipeline_model_parallel_size", file);
    const std::string stack = t5 ? "model.encoder." : "model.";
    b.params.num_layers = node_int(cfg, stack + "num_layers", file);
    b.params.hidden_size = node_int(cfg, stack + "hidden_size", file);
    b.params.num_attention_heads = node_int(cfg, stack + "num_attention_heads", file);
    if (const ConfigNode* lr = cfg.find_path("model.optim.lr"); lr && (lr->is_float() || lr->is_int())) {
      b.params.lr = lr->as_double();
    }
  } else {
    b.batch = calculate_gbs_tp_pp(s.family, b.size_in_b, s.gpu_memory_gb, s.seq_length);
    b.params = calculate_model_size_params(s.family, b.size_in_b, s.vocab_size, s.seq_length);
  }

  // run and trainer (written with a custom config too).
  const double days = s.max_training_days.value_or(b.estimated_days.value_or(1.0));
  cfg.set_path("run.name", str(fmt::format("{}_{}b", model, b.size_label)));
  cfg.set_path("run.results_dir", str("${base_results_dir}/${.name}"));
  cfg.set_path("run.time_limit", str(format_time_limit(days)));
  cfg.set_path("trainer.num_nodes", i(s.num_nodes));
  cfg.set_path("trainer.devices", i(s.gpus_per_node));
  if (!custom) cfg.set_path("trainer.precision", str("bf16"));
  const std::int64_t max_steps =
      static_cast<std::int64_t>(s.num_tokens_in_b * 1e9 / (double(s.seq_length) * b.batch.gbs));
  cfg.set_path("trainer.max_steps", i(max_steps));
  cfg.set_path("trainer.max_time", str(format_max_time(days)));
  if (custom) {
    b.config = std::move(cfg);
    return b;
  }

  const ModelSizeParams& p = b.params;
  cfg.set_path("model.global_batch_size", i(b.batch.gbs));
  // The reference computes TP/PP here and drops them; the base config is meant to run, so they
  // are written (docs/hp_tool.md, "differences").
  cfg.set_path("model.tensor_model_parallel_size", i(b.batch.tp));
  cfg.set_path("model.pipeline_model_parallel_size", i(b.batch.pp));
  cfg.set_path("model.optim.lr", f(p.lr));
  cfg.set_path("model.optim.sched.min_lr", f(round_to(0.1 * p.lr, 8)));
  if (!t5) {
    cfg.set_path("model.num_layers", i(p.num_layers));
    cfg.set_path("model.hidden_size", i(p.hidden_size));
    cfg.set_path("model.num_attention_heads", i(p.num_attention_heads));
    if (p.ffn_hidden_size) cfg.set_path("model.ffn_hidden_size", i(*p.ffn_hidden_size));
    cfg.set_path("model.encoder_seq_length", i(s.seq_length));
    cfg.set_path("model.max_position_embeddings", i(s.seq_length));
    cfg.set_path("model.data.seq_length", i(s.seq_length));
    cfg.set_path("model.init_method_std", f(round_to(0.64 / std::sqrt(double(p.hidden_size)), 6)));
    cfg.set_path("model.optim.sched.warmup_steps", i(static_cast<std::int64_t>(0.0015 * max_steps)));
    cfg.set_path("model.optim.sched.constant_steps", i(static_cast<std::int64_t>(0.166 * max_steps)));
    if (b.size_in_b <= 13.0) cfg.set_path("model.sequence_parallel", ConfigNode::boolean(false));
  } else {
    for (const char* stack : {"encoder", "decoder"}) {
      const std::string k = fmt::format("model.{}.", stack);
      cfg.set_path(k + "num_layers", i(p.num_layers));
      cfg.set_path(k + "hidden_size", i(p.hidden_size));
      cfg.set_path(k + "num_attention_heads", i(p.num_attention_heads));
      if (p.ffn_hidden_size) cfg.set_path(k + "ffn_hidden_size", i(*p.ffn_hidden_size));
      if (p.kv_channels) cfg.set_path(k + "kv_channels", i(*p.kv_channels));
      cfg.set_path(k + "init_method_std", f(0.015));
    }
    cfg.set_path("model.optim.sched.warmup_ratio", f(0.01));
  }
  b.config = std::move(cfg);
  return b;
}

SearchModel search_model(const BaseConfig& base, const TrainSettings& s) {
  SearchModel m;
  m.family = s.family;
  m.size_in_b = base.size_in_b;
  m.size_label = base.size_label;
  m.layers = base.params.num_layers;
  m.num_attention_heads = base.params.num_attention_heads;
  m.global_batch_size = base.batch.gbs;
  m.seq_length = s.seq_length;
  if (!is_encoder_decoder(s.family)) {
    if (const ConfigNode* n = base.config.find_path("model.activations_checkpoint_method"); n && n->is_string()) {
      m.act_method = n->as_string();
    }
  }
  return m;
}

ConfigNode candidate_config(const BaseConfig& base, const TrainSettings& s, const SearchModel& m, int nodes,
                            const Candidate& c) {
  ConfigNode cfg = base.config;
  const std::string name = candidate_name(m, nodes, c);
  cfg.set_path("run.name", str(name));
  cfg.set_path("run.time_limit", str(format_run_time_limit(s.max_minutes_per_run)));
  cfg.set_path("trainer.num_nodes", i(nodes));
  cfg.set_path("trainer.max_steps", i(s.max_steps_per_run));
  cfg.set_path("trainer.val_check_interval", i(s.max_steps_per_run));
  cfg.set_path("trainer.max_time", str(fmt::format("00:{:02}:{:02}:00", s.max_minutes_per_run / 60,
                                                   s.max_minutes_per_run % 60)));
  cfg.set_path("exp_manager.create_checkpoint_callback", ConfigNode::boolean(false));
  cfg.set_path("model.tensor_model_parallel_size", i(c.tp));
  cfg.set_path("model.pipeline_model_parallel_size", i(c.pp));
  cfg.set_path("model.micro_batch_size", i(c.mbs));
  auto opt = [](const std::optional<int>& v) { return v ? i(*v) : ConfigNode::null_value(); };
  if (is_encoder_decoder(m.family)) {
    if (c.act_ckpt_layers) {
      cfg.set_path("model.encoder.activations_checkpoint_num_layers", i(*c.act_ckpt_layers / 2));
      cfg.set_path("model.decoder.activations_checkpoint_num_layers", i(*c.act_ckpt_layers / 2));
    }
  } else {
    if (c.act_ckpt_layers) {
      cfg.set_path("model.activations_checkpoint_num_layers", i(*c.act_ckpt_layers));
      // Layers to recompute need a granularity; a template without one gets full recompute of
      // whole layers (block), which is what the count means.
      const ConfigNode* g = cfg.find_path("model.activations_checkpoint_granularity");
      if (*c.act_ckpt_layers > 0 && (g == nullptr || g->is_null())) {
        cfg.set_path("model.activations_checkpoint_granularity", str("full"));
        cfg.set_path("model.activations_checkpoint_method", str("block"));
      }
    }
    cfg.set_path("model.num_micro_batches_with_partial_activation_checkpoints",
                 opt(c.num_micro_batches_with_partial_activation_checkpoints));
    cfg.set_path("model.activations_checkpoint_layers_per_pipeline",
                 opt(c.activations_checkpoint_layers_per_pipeline));
    if (c.virtual_pipeline_size) {
      cfg.set_path("model.virtual_pipeline_model_parallel_size", i(*c.virtual_pipeline_size));
    }
  }
  return cfg;
}

}  // namespace bignlp::hp
