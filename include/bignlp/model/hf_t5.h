// Import of Hugging Face T5 / T5 v1.1 / mT5 checkpoints (config.json + model.safetensors) into
// the "t5" family (T5Model).
//
// HF T5 is NeMo's T5 block with: RMSNorm without bias (T5LayerNorm, layer_norm_epsilon), no linear
// biases, no 1/sqrt(d_kv) attention scale (normalize_attention_scores false), a relative position
// bias (relative_attention_bias in block 0 of each stack, shared by all layers, not scaled by the
// layer number: apply_query_key_layer_scaling false; cross-attention without one), no absolute
// positions, the encoder's and decoder's token embedding `shared`, and an output layer that is
// either `shared` applied to the decoder output times d_model^-0.5 (tie_word_embeddings, T5) or
// `lm_head.weight` (T5 v1.1, mT5). The d_model^-0.5 of the tied head is folded into the decoder's
// final norm weight (x * w * s: the same product).
// Mapping (weights are torch Linear (out, in) on both sides):
//   shared.weight                                   -> encoder_embedding.word_embeddings (tied head)
//   {encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias.weight (buckets, NH)
//                                                   -> {encoder,decoder}_relative_position_embedding
//   *.block.i.layer.0.layer_norm                    -> layers.i.input_layernorm
//   *.block.i.layer.0.SelfAttention.{q,k,v}         -> self_attention.query_key_value, head-interleaved
//   *.block.i.layer.0.SelfAttention.o               -> self_attention.dense
//   decoder.block.i.layer.1.layer_norm / EncDecAttention.q / {k,v} / o
//                                                   -> post_attention_layernorm / inter_attention.query /
//                                                      inter_attention.key_value (interleaved) / .dense
//   last layer K: layer_norm, DenseReluDense.wi (relu, gelu) or wi_0 / wi_1 (gated-gelu, gated-silu), wo
//                                                   -> post_(inter_)attention_layernorm, mlp.dense_h_to_4h
//                                                      (_2), mlp.dense_4h_to_h
//   {encoder,decoder}.final_layer_norm              -> {encoder,decoder} final_layernorm
//   lm_head.weight (untied)                         -> tokens_head.weight
// feed_forward_proj: relu, gelu (erf), gelu_new (tanh), gated-gelu (tanh, HF gelu_new), gated-relu, gated-silu.
// The vocabulary is not padded (make_vocab_size_divisible_by 1) so log-probabilities equal HF's.
// Rejected with a DataError naming the file: another model_type, an unknown feed_forward_proj, a
// missing tensor or a tensor of the wrong shape. Weights may be F32, F16 or BF16.
#pragma once

#include <filesystem>

#include "bignlp/model/t5.h"

namespace bignlp::model {

/// The T5Config of the HF T5 checkpoint in `dir` (reads dir/config.json).
T5Config read_hf_t5_config(const std::filesystem::path& dir);

/// Loads dir/model.safetensors into `model` (built from read_hf_t5_config(dir), one rank).
void load_hf_t5_weights(const std::filesystem::path& dir, T5Model& model);

}  // namespace bignlp::model
