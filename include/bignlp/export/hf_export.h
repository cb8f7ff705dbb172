// Hugging Face export: a bignlp GPT checkpoint as a GPT-2 directory (config.json +
// model.safetensors, vocab.json + merges.txt copied), the inverse of model/hf_gpt2.h's import.
//
// Mapping (ours (out, in), HF Conv1D (in, out)):
//   word_embeddings (Vp, C) -> transformer.wte.weight (V, C): the V real rows (padding rows dropped;
//                              HF scores exactly the tokenizer's vocabulary); lm_head is tied
//   position_embeddings     -> transformer.wpe.weight
//   input/post_attention/final layernorm -> h.i.ln_1 / h.i.ln_2 / ln_f
//   query_key_value (3C, C), rows head-interleaved (head h: q_h, k_h, v_h)
//                           -> h.i.attn.c_attn (C, 3C), columns [q | k | v], head-major inside each
//   dense, dense_h_to_4h, dense_4h_to_h -> attn.c_proj, mlp.c_fc, mlp.c_proj (transposed)
// config.json: model_type gpt2, GPT2LMHeadModel, n_embd/n_layer/n_head/n_inner/n_positions,
// activation_function gelu_new (tanh GeLU) or gelu (erf), layer_norm_epsilon, dropouts,
// initializer_range, bos/eos 50256 (the vocab's "<|endoftext|>" when it has one).
// Refused (ConfigError): a non-GPT family, kv_channels != hidden / heads (GPT-2 cannot express it).
// The whole fp32 model is assembled once in memory (safetensors needs its header first); the
// checkpoint's shards are only mapped. Written in a staging directory and renamed into place.
#pragma once

#include <filesystem>

#include "bignlp/core/logging.h"

namespace bignlp::exporting {

void export_hf_gpt2(const std::filesystem::path& checkpoint, const std::filesystem::path& output, bool overwrite,
                    const Logger& log);

}  // namespace bignlp::exporting
