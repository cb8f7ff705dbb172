// The HP tool's model arithmetic (docs/hp_tool.md §2-§3): the model size a compute budget buys,
// the days a size takes, the parameter-count formulas the tool sizes layers with, and the size
// tables that give hidden size, heads, learning rate, global batch and the suggested TP/PP.
//
// The numbers follow the reference tool's rules (the 8*P*T FLOPs rule, its thresholds and its
// layer search), so the results match the tool's own unit tests; tests/unit/hp/ holds them.
// Pure functions: no config, no files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bignlp::hp {

enum class Family { kGpt3, kT5, kMt5, kBert };

/// "gpt3", "t5", "mt5", "bert"; nullopt for anything else.
std::optional<Family> parse_family(std::string_view name);
std::string_view to_string(Family family);
/// T5 and mT5: an encoder and a decoder stack.
inline bool is_encoder_decoder(Family f) { return f == Family::kT5 || f == Family::kMt5; }

/// The compute budget: G = num_nodes * gpus_per_node GPUs at `tflops_per_gpu` for `days`.
struct Budget {
  int num_nodes = 0;
  int gpus_per_node = 8;
  double tflops_per_gpu = 140;
  double num_tokens_in_b = 300;
};

/// P = round(k * D*86400*G*F*1e12 / (8*T*1e9) / 1e9, 2), k = 0.87 for mT5, else 1. Nullopt for an
/// unknown model name (the reference returns None). Throws ConfigError for a non-positive budget.
std::optional<double> estimate_model_size(std::string_view model, double max_training_days, const Budget& budget);
/// D = round(k * P*1e9 * 8*T*1e9 / (86400*G*F*1e12), 2), k = 1.15 for mT5, else 1.
std::optional<double> estimate_training_days(std::string_view model, double model_size_in_b, const Budget& budget);

/// Parameters in billions by the tool's formulas (§3.4): GPT 12 L h^2 (1 + 13/(12h) + (V+s)/(12Lh));
/// T5/mT5 with Pj = heads*kv and GeGLU 1.5F per stack of L layers; BERT. ffn/kv/heads are only
/// read where the formula uses them.
double calculate_model_size(Family family, double vocab, double seq, double hidden, double layers, double ffn,
                            double kv, double heads);

/// The shape the size tables give (§3.3) and the layer count found for it (§3.4).
struct ModelSizeParams {
  int num_layers = 0;
  int hidden_size = 0;
  int num_attention_heads = 0;
  std::optional<int> ffn_hidden_size;  ///< nullopt for GPT (4h by the template)
  std::optional<int> kv_channels;      ///< nullopt for GPT and BERT
  double lr = 0;
};
/// Throws ConfigError when the size is outside the tables or no layer count reaches it within the
/// search's margins ("Number of layers not found").
ModelSizeParams calculate_model_size_params(Family family, double model_size_in_b, double vocab, double seq);

/// The global batch and the suggested TP/PP by size (§3.2), for 40 or 80 GB GPUs. Throws
/// ConfigError for a size, sequence length or memory outside the tables.
struct GbsTpPp {
  int gbs = 0;
  int tp = 1;
  int pp = 1;
};
GbsTpPp calculate_gbs_tp_pp(Family family, double model_size_in_b, int gpu_memory_gb, int seq_length);

/// Python's round(x, digits) for the values the tool rounds (half to even on the decimal value).
double round_to(double x, int digits);

}  // namespace bignlp::hp
