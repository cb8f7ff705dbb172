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

/// A T5 / mT5 checkpoint (the t5 family) as a Hugging Face T5 directory (model_type t5) (config.json, model.safetensors and the
/// sentencepiece model as spiece.model): the inverse of model/hf_t5.h's import.
///   encoder_embedding.word_embeddings (Vp, C) -> shared.weight (V, C), the real rows
///   {encoder,decoder}_relative_position_embedding -> {encoder,decoder}.block.0.layer.0.SelfAttention
///                                                    .relative_attention_bias.weight
///   query_key_value (head-interleaved q, k, v)   -> SelfAttention.q / k / v; dense -> o
///   inter_attention.query / key_value / dense     -> EncDecAttention.q / k, v / o
///   input / post_attention / post_inter_attention layernorm -> layer.0 / 1 / (2) .layer_norm
///   mlp.dense_h_to_4h (_2), dense_4h_to_h         -> DenseReluDense.wi (wi_0, wi_1), wo
///   final_layernorm                               -> {encoder,decoder}.final_layer_norm
///   tokens_head.weight (untied)                   -> lm_head.weight; tied: tie_word_embeddings true
///                                                    and the decoder's final norm times sqrt(d_model)
///                                                    (HF scales the output by d_model^-0.5)
/// NeMo's 1/sqrt(d_kv) score scale (normalize_attention_scores) is folded into the q weights.
/// activation relu / gelu (erf) / gelu (tanh form) / geglu (tanh form) / reglu / swiglu ->
/// feed_forward_proj relu / gelu / gelu_new / gated-gelu / gated-relu / gated-silu.
/// Refused (ConfigError naming the model.* key): a non-T5 family, learned absolute positions, a
/// relative bias on cross-attention, apply_query_key_layer_scaling (with more than one layer: the
/// bias is scaled by the layer number), layernorm, linear biases, the tied head's bias, separate
/// encoder/decoder token embeddings, encoder and decoder of different widths or activations, GeGLU
/// in the erf form, other activations.
void export_hf_t5(const std::filesystem::path& checkpoint, const std::filesystem::path& output, bool overwrite,
                  const Logger& log);

}  // namespace bignlp::exporting
