// The p-tuning prompt encoder (tuning.md §3.5): n virtual-token rows from a trainable embedding,
// the first rows overwritten by the task name's (frozen) word embeddings, through an encoder.
//
// NeMo version followed: 1.13 (NeMo 1.12-1.16 PromptEncoder), which contains 1.11's encoder as
// its `lstm` type with encoder_hidden = h/2 (the 22.08 launcher's: a preset without
// p_tuning.encoder_type gets `lstm`). Shapes (h: the LM hidden size, n: total_virtual_tokens,
// eh: p_tuning.encoder_hidden, default h/2 for lstm/mlp, 2048 for tpmlp):
//   lstm   embedding [n,h]; BiLSTM(h -> eh per direction, num_layers, batch_first);
//          mlp_head: Linear(2eh,2eh) ReLU Linear(2eh,h)                 (N11: eh = h/2)
//   mlp    embedding [n,h]; mlp_head: Linear(h,eh) ReLU [Linear(eh,eh) ReLU]x(num_layers-2) Linear(eh,h)
//   tpmlp  embedding [n,h]; tpmlp.first Linear(h,eh), GeLU (tanh form), tpmlp.second Linear(eh,h);
//          weights N(0, init_std), biases 0 (TP 1)
// PyTorch's initialisation otherwise: embedding N(0,1); Linear and LSTM U(-1/sqrt(fan), 1/sqrt(fan)).
// Parameter names are NeMo's state-dict keys under "prompt_encoder." (embedding.weight,
// lstm_head.weight_ih_l0[_reverse], mlp_head.0.weight, tpmlp.first.weight, ...).
// The math runs on the host in fp32 (the encoder is tiny next to the LM); parameters live in the
// model's ParameterStore on its device and are copied in and gradients added back per call.
// Not here: dropout between LSTM layers (p_tuning.dropout must be 0, the presets' value).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bignlp/model/parameters.h"
#include "bignlp/ops/context.h"

namespace bignlp::tune {

enum class EncoderType { kLstm, kMlp, kTpMlp };

struct PromptEncoderConfig {
  EncoderType type = EncoderType::kLstm;
  std::int64_t virtual_tokens = 0;  ///< n
  std::int64_t hidden = 0;          ///< h
  std::int64_t encoder_hidden = 0;  ///< eh (0: the type's default)
  int num_layers = 2;
  float init_std = 0.023f;
  std::int64_t effective_encoder_hidden() const;
};

EncoderType parse_encoder_type(const std::string& name);  ///< lstm, mlp, tpmlp (ConfigError otherwise)
const char* encoder_type_name(EncoderType t);

/// What one forward keeps for its backward (host fp32).
struct PromptEncoderPass {
  std::int64_t overwritten = 0;             ///< rows taken from the task name (no embedding gradient)
  std::vector<float> x;                     ///< (n, h) encoder input
  std::vector<std::vector<float>> lstm_in;  ///< per LSTM layer: its input (n, in)
  std::vector<std::vector<float>> gates;    ///< per layer and direction: (n, 4H) activated gates i f g o
  std::vector<std::vector<float>> cells;    ///< per layer and direction: (n, H) cell states
  std::vector<std::vector<float>> hs;       ///< per layer and direction: (n, H) hidden states
  std::vector<std::vector<float>> mlp_in;   ///< per linear layer: its input
  std::vector<std::vector<float>> pre_act;  ///< per linear layer but the last: its output before the activation
};

class PromptEncoder {
 public:
  /// Registers the parameters (trainable) in `store` (before allocate()).
  PromptEncoder(const PromptEncoderConfig& config, model::ParameterStore& store);

  const PromptEncoderConfig& config() const { return config_; }
  /// Draws PyTorch-style initial weights from `seed`.
  void initialize(const ops::OpContext& ctx, model::ParameterStore& store, std::uint64_t seed) const;
  /// The n output rows (n, h) for a task whose (padded) task-name embeddings are `taskname_rows`
  /// (L rows of h; rows 0..min(L,n)-1 of the input are replaced by them).
  std::vector<float> forward(const ops::OpContext& ctx, const std::vector<float>& taskname_rows, PromptEncoderPass& pass) const;
  /// Adds d(loss)/d(parameters) for the output gradient `dout` (n, h) to the parameters' gradients.
  void backward(const ops::OpContext& ctx, const PromptEncoderPass& pass, const std::vector<float>& dout) const;
  std::vector<model::Parameter*> parameters() const;

 private:
  struct Linear {
    model::Parameter* weight = nullptr;  // (out, in)
    model::Parameter* bias = nullptr;    // (out)
  };
  struct LstmDir {
    model::Parameter *w_ih = nullptr, *w_hh = nullptr, *b_ih = nullptr, *b_hh = nullptr;
  };
  PromptEncoderConfig config_;
  model::Parameter* embedding_ = nullptr;
  std::vector<std::vector<LstmDir>> lstm_;  // [layer][direction]
  std::vector<Linear> linears_;
};

/// Host fp32 copy of a parameter's compute value.
std::vector<float> host_values(const ops::OpContext& ctx, const model::Parameter& p);
/// p.grad += g (host fp32, p's numel); no-op for a frozen parameter.
void add_host_grad(const ops::OpContext& ctx, model::Parameter& p, const std::vector<float>& g);

}  // namespace bignlp::tune
