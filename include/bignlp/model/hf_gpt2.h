// Import of Hugging Face GPT-2 checkpoints (config.json + model.safetensors) into GptModel.
//
// Mapping (HF Conv1D weights are (in, out); ours are (out, in)):
//   [transformer.]wte.weight (V, C)            -> word_embeddings (tied output layer)
//   [transformer.]wpe.weight (P, C)            -> position_embeddings
//   h.i.ln_1 / ln_2 / ln_f                     -> input_layernorm / post_attention_layernorm / final_layernorm
//   h.i.attn.c_attn (C, 3C): columns [q | k | v], head-major inside each -> query_key_value (3C, C)
//                               re-ordered head-interleaved (head h: q_h, k_h, v_h)
//   h.i.attn.c_proj, h.i.mlp.c_fc, h.i.mlp.c_proj -> dense, dense_h_to_4h, dense_4h_to_h (transposed)
// activation_function gelu_new / gelu_fast / gelu_pytorch_tanh -> tanh GeLU; gelu -> erf GeLU.
// The vocabulary is not padded (make_vocab_size_divisible_by 1) so log-probabilities equal the
// original model's; dropouts come from resid_pdrop / attn_pdrop. Weights may be F32, F16 or BF16.
// Rejected with a DataError naming the file: scale_attn_by_inverse_layer_idx, scale_attn_weights
// false, add_cross_attention, a missing tensor or a tensor of the wrong shape.
#pragma once

#include <filesystem>

#include "bignlp/model/gpt.h"

namespace bignlp::model {

/// The GptConfig of the HF GPT-2 checkpoint in `dir` (reads dir/config.json).
GptConfig read_hf_gpt2_config(const std::filesystem::path& dir);

/// Loads dir/model.safetensors into `model` (built from read_hf_gpt2_config(dir)).
void load_hf_gpt2_weights(const std::filesystem::path& dir, GptModel& model);

}  // namespace bignlp::model
