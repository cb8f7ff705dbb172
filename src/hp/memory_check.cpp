#include "bignlp/hp/memory_check.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/core/error.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::hp {

using config::ConfigNode;

namespace {

const ConfigNode* value(const ConfigNode& cfg, const std::string& path) {
  const ConfigNode* n = cfg.find_path(path);
  return (n == nullptr || n->is_null()) ? nullptr : n;
}

std::int64_t req_int(const ConfigNode& cfg, const std::string& path) {
  const ConfigNode* n = value(cfg, path);
  if (n == nullptr || !n->is_int()) {
    throw ConfigError(fmt::format("{}: the memory estimate needs an integer here{}", path,
                                  n == nullptr ? " (it is missing or null)" : ""));
  }
  return n->as_int();
}

std::int64_t int_or(const ConfigNode& cfg, const std::string& path, std::int64_t fallback) {
  const ConfigNode* n = value(cfg, path);
  return (n != nullptr && n->is_int()) ? n->as_int() : fallback;
}

bool bool_or(const ConfigNode& cfg, const std::string& path, bool fallback) {
  const ConfigNode* n = value(cfg, path);
  return (n != nullptr && n->is_bool()) ? n->as_bool() : fallback;
}

std::string str_or(const ConfigNode& cfg, const std::string& path, const std::string& fallback) {
  const ConfigNode* n = value(cfg, path);
  if (n == nullptr) return fallback;
  if (n->is_string()) return n->as_string();
  if (n->is_int()) return fmt::format("{}", n->as_int());
  return fallback;
}

sizing::Precision precision_of(const std::string& p) {
  if (p == "32" || p == "32-true" || p == "fp32") return sizing::Precision::kFp32;
  if (p == "16" || p == "16-mixed" || p == "fp16") return sizing::Precision::kFp16;
  return sizing::Precision::kBf16;
}

bool gated(const std::string& activation) {
  return activation == "geglu" || activation == "swiglu" || activation == "reglu" || activation == "fast-geglu" ||
         activation == "fast-swiglu";
}

}  // namespace

std::string MemoryBreakdown::explain() const {
  const double g = 1024.0 * 1024.0 * 1024.0;
  std::string s;
  s += fmt::format("  layout: TP {} x PP {} x DP {}, micro batch {}, {} micro-batches per step, recompute {}, {}{}\n",
                   tp, pp, dp, mbs, num_micro_batches, recompute, precision,
                   distributed_optimizer ? ", distributed optimizer" : "");
  s += fmt::format("  per GPU (pipeline stage {}, {} parameters):\n", stage, estimate.parameters);
  s += fmt::format("    weights            {:8.2f} GiB\n", estimate.weight_bytes / g);
  s += fmt::format("    gradients          {:8.2f} GiB\n", estimate.gradient_bytes / g);
  s += fmt::format("    master weights     {:8.2f} GiB\n", estimate.master_weight_bytes / g);
  s += fmt::format("    optimizer state    {:8.2f} GiB\n", estimate.optimizer_state_bytes / g);
  s += fmt::format("    activations        {:8.2f} GiB\n", estimate.activation_bytes / g);
  s += fmt::format("    workspace          {:8.2f} GiB\n", workspace_bytes / g);
  s += fmt::format("    total              {:8.2f} GiB\n", total_bytes() / g);
  return s;
}

MemoryBreakdown estimate_training_memory(const ConfigNode& cfg, std::int64_t vocab_size, double workspace_gb) {
  MemoryBreakdown out;
  const bool t5 = value(cfg, "model.encoder") != nullptr;
  const std::int64_t nodes = int_or(cfg, "trainer.num_nodes", 1);
  const std::int64_t devices = int_or(cfg, "trainer.devices", 1);
  sizing::TrainingLayout layout;
  layout.tp_size = static_cast<int>(int_or(cfg, "model.tensor_model_parallel_size", 1));
  layout.pp_size = static_cast<int>(int_or(cfg, "model.pipeline_model_parallel_size", 1));
  const std::int64_t world = nodes * devices;
  const std::int64_t mp = std::int64_t(layout.tp_size) * layout.pp_size;
  if (mp < 1 || world % mp != 0) {
    throw ConfigError(fmt::format("model.tensor_model_parallel_size x model.pipeline_model_parallel_size = {} does not "
                                  "divide trainer.num_nodes x trainer.devices = {}",
                                  mp, world));
  }
  layout.dp_size = static_cast<int>(world / mp);
  layout.micro_batch_size = req_int(cfg, "model.micro_batch_size");
  const std::int64_t gbs = req_int(cfg, "model.global_batch_size");
  layout.num_micro_batches = std::max<std::int64_t>(1, gbs / (layout.micro_batch_size * layout.dp_size));
  layout.virtual_pipeline_size = static_cast<int>(int_or(cfg, "model.virtual_pipeline_model_parallel_size", 1));
  layout.sequence_parallel = bool_or(cfg, "model.sequence_parallel", false) && layout.tp_size > 1;
  const std::string precision = str_or(cfg, "trainer.precision", "bf16");
  layout.precision = precision_of(precision);
  layout.distributed_optimizer = str_or(cfg, "model.optim.name", "") == "distributed_fused_adam";
  if (t5) layout.pipeline_split_rank = static_cast<int>(int_or(cfg, "model.pipeline_model_parallel_split_rank", 0));

  const std::string stack = t5 ? "model.encoder." : "model.";
  const std::string granularity = str_or(cfg, stack + "activations_checkpoint_granularity", "");
  const std::int64_t act_layers = int_or(cfg, stack + "activations_checkpoint_num_layers", 0);

  // Layers per stage (the stack's, for T5: the estimate's own split handles the two stacks).
  const std::int64_t layers = req_int(cfg, stack + "num_layers");
  const std::int64_t stage_layers = std::max<std::int64_t>(1, t5 ? layers : layers / std::max(1, layout.pp_size));

  auto estimate_for = [&](sizing::Recompute r, int pp_rank) {
    layout.recompute = r;
    if (t5) {
      sizing::T5Shape s;
      s.encoder_num_layers = static_cast<int>(req_int(cfg, "model.encoder.num_layers"));
      s.decoder_num_layers = static_cast<int>(req_int(cfg, "model.decoder.num_layers"));
      s.hidden_size = req_int(cfg, "model.encoder.hidden_size");
      s.num_attention_heads = static_cast<int>(req_int(cfg, "model.encoder.num_attention_heads"));
      s.ffn_hidden_size = int_or(cfg, "model.encoder.ffn_hidden_size", 4 * s.hidden_size);
      s.kv_channels = int_or(cfg, "model.encoder.kv_channels", s.hidden_size / s.num_attention_heads);
      s.vocab_size = vocab_size;
      s.padded_vocab_size =
          sizing::padded_vocab_size(vocab_size, int_or(cfg, "model.make_vocab_size_divisible_by", 128), layout.tp_size);
      s.encoder_seq_length = req_int(cfg, "model.seq_length");
      s.decoder_seq_length = int_or(cfg, "model.data.seq_length_dec", 128);
      s.max_position_embeddings = int_or(cfg, "model.max_position_embeddings", s.encoder_seq_length);
      s.gated_mlp = gated(str_or(cfg, "model.encoder.activation", "geglu"));
      if (str_or(cfg, "model.encoder.position_embedding_type", "learned_absolute") == "relative") {
        s.position_embedding = sizing::T5PositionEmbedding::kRelative;
      }
      return sizing::memory_per_rank(s, layout, pp_rank);
    }
    sizing::GptShape s;
    s.num_layers = static_cast<int>(layers);
    s.hidden_size = req_int(cfg, "model.hidden_size");
    s.num_attention_heads = static_cast<int>(req_int(cfg, "model.num_attention_heads"));
    s.ffn_hidden_size = int_or(cfg, "model.ffn_hidden_size", 4 * s.hidden_size);
    s.head_size = int_or(cfg, "model.kv_channels", s.hidden_size / s.num_attention_heads);
    s.vocab_size = vocab_size;
    s.padded_vocab_size =
        sizing::padded_vocab_size(vocab_size, int_or(cfg, "model.make_vocab_size_divisible_by", 128), layout.tp_size);
    s.seq_length = req_int(cfg, "model.encoder_seq_length");
    s.max_position_embeddings = int_or(cfg, "model.max_position_embeddings", s.seq_length);
    s.gated_mlp = gated(str_or(cfg, "model.activation", "gelu"));
    s.linear_bias = bool_or(cfg, "model.bias", true);
    s.norm_bias = str_or(cfg, "model.normalization", "layernorm") != "rmsnorm";
    const std::string pos = str_or(cfg, "model.position_embedding_type", "learned_absolute");
    s.learned_position_embeddings = pos == "learned_absolute";
    s.tied_output = bool_or(cfg, "model.share_embeddings_and_output_weights", true);
    return sizing::memory_per_rank(s, layout, pp_rank);
  };

  const int stages = t5 ? std::max(1, layout.pp_size) : layout.pp_size;
  double best = -1;
  for (int r = 0; r < stages; ++r) {
    sizing::MemoryEstimate e;
    std::string what;
    if (granularity == "selective") {
      e = estimate_for(sizing::Recompute::kSelective, r);
      what = "selective";
    } else if (granularity == "full" && act_layers > 0) {
      const auto none = estimate_for(sizing::Recompute::kNone, r);
      e = estimate_for(sizing::Recompute::kFull, r);
      const std::int64_t k = std::min(act_layers, stage_layers);
      const double f = double(k) / double(stage_layers);
      e.activation_bytes = f * e.activation_bytes + (1.0 - f) * none.activation_bytes;
      what = k >= stage_layers ? "full" : fmt::format("full ({} of {} layers)", k, stage_layers);
    } else {
      e = estimate_for(sizing::Recompute::kNone, r);
      what = "none";
    }
    if (e.total_bytes() > best) {
      best = e.total_bytes();
      out.estimate = e;
      out.stage = r;
      out.recompute = what;
    }
  }
  out.workspace_bytes = workspace_gb * 1024.0 * 1024.0 * 1024.0;
  out.tp = layout.tp_size;
  out.pp = layout.pp_size;
  out.dp = layout.dp_size;
  out.mbs = static_cast<int>(layout.micro_batch_size);
  out.num_micro_batches = layout.num_micro_batches;
  out.distributed_optimizer = layout.distributed_optimizer;
  out.precision = precision;
  return out;
}

}  // namespace bignlp::hp
