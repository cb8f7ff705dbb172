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

// One GPT layer's stored activations in bignlp's engine (model/transformer_layer.h
// TransformerLayerActivations): norm outputs, QKV, the attention output with its fp32 log-sum-exp
// (the scores are not kept: attention is recomputed from Q, K, V in backward), the residual, the
// MLP pre-activation(s) and activation, the norms' fp32 mean and rstd; dropout masks are
// regenerated from the counter-based RNG, not stored. Full recomputation keeps the layer input.
double engine_layer_bytes(const sizing::LayerShape& l, std::int64_t seq, const sizing::TrainingLayout& layout) {
  const double e = sizing::activation_element_bytes(layout.precision);
  const double t = layout.tp_size;
  const double repl = layout.sequence_parallel ? t : 1.0;
  const double sb = double(seq) * double(layout.micro_batch_size);
  const double h = double(l.hidden_size), P = double(l.projection_size()), F = double(l.ffn_hidden_size);
  if (layout.recompute == sizing::Recompute::kFull) return e * sb * h / repl;
  const double mlp = l.gated_mlp ? 3.0 : 2.0;
  return e * sb * (3.0 * h / repl + 4.0 * P / t + mlp * F / t) + 16.0 * sb / repl +
         4.0 * double(layout.micro_batch_size) * (l.num_attention_heads / t) * double(seq);
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
    sizing::MemoryEstimate m = sizing::memory_per_rank(s, layout, pp_rank);
    // From Megatron's per-layer accounting (memory.h) to the engine's: the same layers in flight.
    const int p = layout.pp_size, v = layout.virtual_pipeline_size;
    const std::int64_t chunks =
        v == 1 ? std::min<std::int64_t>(p - pp_rank, layout.num_micro_batches)
               : std::min<std::int64_t>(2 * (p - pp_rank - 1) + std::int64_t(v - 1) * p + 1,
                                        layout.num_micro_batches * v);
    const double in_flight = double(chunks * (s.num_layers / (p * v)));
    const sizing::LayerShape layer = s.layer();
    const double e = sizing::activation_element_bytes(layout.precision);
    const double sb = double(s.seq_length) * double(layout.micro_batch_size);
    if (pp_rank == p - 1) {
      // The engine keeps the logits in the compute dtype (cross-entropy works on them in place),
      // not in fp32 as memory.h counts.
      m.activation_bytes += (e - 4.0) * sb * double(s.padded_vocab_size) / double(layout.tp_size);
    }
    m.activation_bytes += in_flight * (engine_layer_bytes(layer, s.seq_length, layout) -
                                       sizing::layer_activation_bytes(layer, s.seq_length, 0, layout));
    if (layout.recompute == sizing::Recompute::kFull) {
      sizing::TrainingLayout whole = layout;
      whole.recompute = sizing::Recompute::kNone;
      const double working = engine_layer_bytes(layer, s.seq_length, whole);
      m.activation_bytes += working - sizing::layer_activation_bytes(layer, s.seq_length, 0, whole);
      if (pp_rank == p - 1) {
        // The logits (and the output layer's inputs) are released after the loss's backward,
        // before any layer is recomputed: the peak holds the larger of the two, not both.
        const double repl = layout.sequence_parallel ? double(layout.tp_size) : 1.0;
        const double output = 2.0 * e * sb * double(s.hidden_size) / repl +
                              e * sb * double(s.padded_vocab_size) / double(layout.tp_size);
        m.activation_bytes -= std::min(working, output);
      }
    }
    return m;
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

namespace bignlp::hp {

std::string FittingChange::text() const {
  std::string s;
  for (const auto& [k, v] : overrides) {
    if (!s.empty()) s += " ";
    s += k + "=" + (v.is_bool() ? (v.as_bool() ? "true" : "false") : v.is_int() ? fmt::format("{}", v.as_int())
                                                                                 : v.as_string());
  }
  return s;
}

std::int64_t assumed_vocab_size(const ConfigNode& cfg) {
  const std::string type = str_or(cfg, "model.tokenizer.type", "");
  const std::string lib = str_or(cfg, "model.tokenizer.library", "");
  if (lib == "sentencepiece") return 250000;
  if (type == "BertWordPieceCase") return 28996;
  if (type == "BertWordPieceLowerCase") return 30522;
  return 50257;
}

std::vector<FittingChange> nearest_fitting(const ConfigNode& cfg, std::int64_t vocab, double limit_gb,
                                           double workspace_gb, std::size_t max_results) {
  using Change = std::pair<std::string, ConfigNode>;
  const bool t5 = value(cfg, "model.encoder") != nullptr;
  const std::string stack = t5 ? "model.encoder." : "model.";
  const std::int64_t tp = int_or(cfg, "model.tensor_model_parallel_size", 1);
  const std::int64_t pp = int_or(cfg, "model.pipeline_model_parallel_size", 1);
  const std::int64_t mbs = int_or(cfg, "model.micro_batch_size", 1);
  std::vector<std::vector<Change>> singles;
  for (std::int64_t m = mbs / 2; m >= 1; m /= 2) singles.push_back({{"model.micro_batch_size", ConfigNode::integer(m)}});
  if (str_or(cfg, stack + "activations_checkpoint_granularity", "") != "full" ||
      int_or(cfg, stack + "activations_checkpoint_num_layers", 0) == 0) {
    std::vector<Change> full;
    for (const char* s : t5 ? std::vector<const char*>{"model.encoder.", "model.decoder."}
                            : std::vector<const char*>{"model."}) {
      const std::string k(s);
      full.push_back({k + "activations_checkpoint_granularity", ConfigNode::string("full")});
      full.push_back({k + "activations_checkpoint_method", ConfigNode::string("uniform")});
      full.push_back({k + "activations_checkpoint_num_layers", ConfigNode::integer(1)});
    }
    singles.push_back(full);
  }
  if (tp > 1 && !bool_or(cfg, "model.sequence_parallel", false))
    singles.push_back({{"model.sequence_parallel", ConfigNode::boolean(true)}});
  if (str_or(cfg, "model.optim.name", "") != "distributed_fused_adam")
    singles.push_back({{"model.optim.name", ConfigNode::string("distributed_fused_adam")}});
  if (tp < 8) singles.push_back({{"model.tensor_model_parallel_size", ConfigNode::integer(tp * 2)}});
  singles.push_back({{"model.pipeline_model_parallel_size", ConfigNode::integer(pp * 2)}});

  std::vector<FittingChange> out;
  auto try_changes = [&](const std::vector<Change>& changes) {
    ConfigNode c = cfg;
    for (const auto& [k, v] : changes) c.set_path(k, v);
    try {
      const double gb = estimate_training_memory(c, vocab, workspace_gb).total_bytes() / (1024.0 * 1024.0 * 1024.0);
      if (gb <= limit_gb) out.push_back({changes, gb});
    } catch (const ConfigError&) {
      // a layout the model or the job cannot take
    }
  };
  for (const auto& s : singles) try_changes(s);
  auto by_size = [](const FittingChange& a, const FittingChange& b) { return a.total_gb > b.total_gb; };
  // One change: the ones that keep the most of the memory in use (the least disruptive) first.
  std::sort(out.begin(), out.end(), by_size);
  if (out.size() < max_results) {
    const std::size_t first = out.size();
    for (std::size_t i = 0; i < singles.size(); ++i) {
      for (std::size_t j = i + 1; j < singles.size(); ++j) {
        if (singles[i][0].first == singles[j][0].first) continue;  // two micro batch sizes
        std::vector<Change> both = singles[i];
        both.insert(both.end(), singles[j].begin(), singles[j].end());
        try_changes(both);
      }
    }
    std::sort(out.begin() + static_cast<long>(first), out.end(), by_size);
  }
  if (out.size() > max_results) out.resize(max_results);
  return out;
}

}  // namespace bignlp::hp
