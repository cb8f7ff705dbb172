// Memory per rank: the state bytes per parameter (megatron-model.md §9) and the activations of
// Korthikanti et al. 2022, on examples worked out by hand.
#include "bignlp/sizing/memory.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::sizing {
namespace {

GptShape gpt3_126m() {
  GptShape s;
  s.num_layers = 12;
  s.hidden_size = 768;
  s.ffn_hidden_size = 3072;
  s.num_attention_heads = 12;
  s.head_size = 64;
  s.vocab_size = 50257;
  s.padded_vocab_size = 50304;
  s.max_position_embeddings = 2048;
  s.seq_length = 2048;
  return s;
}

TEST(StateBytes, PerParameterByPrecisionAndOptimizer) {
  EXPECT_DOUBLE_EQ(state_bytes_per_parameter(Precision::kFp32, false, 1).total(), 16.0);  // 4 + 4 + 8
  EXPECT_DOUBLE_EQ(state_bytes_per_parameter(Precision::kFp32, false, 1).master_weights, 0.0);
  EXPECT_DOUBLE_EQ(state_bytes_per_parameter(Precision::kBf16, false, 1).total(), 18.0);  // 2 + 4 + 4 + 8
  EXPECT_DOUBLE_EQ(state_bytes_per_parameter(Precision::kFp16, false, 8).total(), 18.0);  // DP alone shards nothing
  // The distributed optimizer over d = 8: 6 + 12/d at 16 bits, 8 + 8/d at fp32.
  EXPECT_DOUBLE_EQ(state_bytes_per_parameter(Precision::kBf16, true, 8).total(), 6.0 + 12.0 / 8);
  EXPECT_DOUBLE_EQ(state_bytes_per_parameter(Precision::kFp32, true, 8).total(), 8.0 + 8.0 / 8);
  EXPECT_THROW(state_bytes_per_parameter(Precision::kBf16, true, 0), ConfigError);
}

TEST(LayerActivations, KorthikantiFormulas) {
  // s = 2048, b = 4, h = 768, a = 12: sbh = 6,291,456 and 5as/h = 160.
  const LayerShape layer = gpt3_126m().layer();
  TrainingLayout l;
  l.micro_batch_size = 4;
  const double sbh = 2048.0 * 4 * 768;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, l), sbh * (34 + 160));  // 1,220,542,464
  // TP 2 without sequence parallelism: sbh (10 + 24/t + 5as/(ht)).
  l.tp_size = 2;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, l), sbh * (10 + 24.0 / 2 + 160.0 / 2));
  // TP 2 + SP: sbh/t (34 + 5as/h).
  l.sequence_parallel = true;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, l), sbh / 2 * (34 + 160));
  // Selective recomputation drops the 5as/h term; full keeps the layer input 2sbh (/t under SP).
  l.recompute = Recompute::kSelective;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, l), sbh / 2 * 34);
  l.recompute = Recompute::kFull;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, l), 2 * sbh / 2);
  l.sequence_parallel = false;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, l), 2 * sbh);
  // fp32 activations (e = 4): sbh (16e + 2) + as^2b (2e + 1) = sbh (66 + 9as/h).
  TrainingLayout fp32;
  fp32.micro_batch_size = 4;
  fp32.precision = Precision::kFp32;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(layer, 2048, 0, fp32), sbh * (66 + 9 * 12 * 2048.0 / 768));
}

TEST(LayerActivations, DecoderLayerAddsCrossAttention) {
  // t5/220m decoder layer, s = 128 decoder positions over sk = 512 encoder positions, b = 1, bf16:
  //   replicated 3 blocks * 5 * 128 * 768                                   =  1,474,560
  //   split      8 * 128 * 768 (Q K V dense) + 3 * 2 * 128 * 2048 (geglu)
  //            + 4 * 128 * 768 (cross Q, dense) + 4 * 512 * 768 (cross K, V) =  4,325,376
  //   scores     5 * 12 * 128 * 128 + 5 * 12 * 128 * 512                     =  4,915,200
  LayerShape dec;
  dec.hidden_size = 768;
  dec.ffn_hidden_size = 2048;
  dec.num_attention_heads = 12;
  dec.head_size = 64;
  dec.gated_mlp = true;
  dec.cross_attention = true;
  const TrainingLayout l;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(dec, 128, 512, l), 1'474'560.0 + 4'325'376.0 + 4'915'200.0);
}

TEST(MemoryPerRank, WorkedExampleOnOneRank) {
  // memory.h's example: gpt3/126m, B 4, bf16, one rank, no recomputation.
  TrainingLayout l;
  l.micro_batch_size = 4;
  l.num_micro_batches = 8;
  const MemoryEstimate m = memory_per_rank(gpt3_126m(), l, 0);
  EXPECT_EQ(m.parameters, 125'262'336);
  EXPECT_DOUBLE_EQ(m.weight_bytes, 125'262'336.0 * 2);
  EXPECT_DOUBLE_EQ(m.gradient_bytes, 125'262'336.0 * 4);
  EXPECT_DOUBLE_EQ(m.master_weight_bytes, 125'262'336.0 * 4);
  EXPECT_DOUBLE_EQ(m.optimizer_state_bytes, 125'262'336.0 * 8);
  EXPECT_DOUBLE_EQ(m.state_bytes(), 2'254'722'048.0);
  // 12 layers 14,646,509,568 + embedding mask 6,291,456 + output 25,165,824 + 1,648,361,472.
  EXPECT_DOUBLE_EQ(m.activation_bytes, 14'646'509'568.0 + 6'291'456.0 + 25'165'824.0 + 1'648'361'472.0);
  EXPECT_DOUBLE_EQ(m.total_bytes(), 18'581'050'368.0);
}

TEST(MemoryPerRank, PipelineStagesHoldTheirMicroBatchesInFlight) {
  // 175b at TP 8 + SP, PP 8, B 1, M 64, bf16, distributed optimizer over DP 16, selective recompute.
  GptShape s = gpt3_126m();
  s.num_layers = 96;
  s.hidden_size = 12288;
  s.ffn_hidden_size = 4 * 12288;
  s.num_attention_heads = 96;
  s.head_size = 128;
  s.padded_vocab_size = 51200;
  TrainingLayout l;
  l.tp_size = 8;
  l.pp_size = 8;
  l.dp_size = 16;
  l.sequence_parallel = true;
  l.num_micro_batches = 64;
  l.distributed_optimizer = true;
  l.recompute = Recompute::kSelective;
  const double sbh_t = 2048.0 * 12288 / 8;  // 34 sbh/t per layer
  // Stage 0: 8 micro-batches x 12 layers = L layers' worth (Korthikanti: independent of PP), plus
  // the embedding's dropout mask per micro-batch.
  const MemoryEstimate first = memory_per_rank(s, l, 0);
  EXPECT_DOUBLE_EQ(first.activation_bytes, 96 * 34 * sbh_t + 8 * sbh_t);
  EXPECT_EQ(first.parameters, rank_parameter_count(s, l.rank(0)));
  EXPECT_DOUBLE_EQ(first.state_bytes(), static_cast<double>(first.parameters) * (6.0 + 12.0 / 16));
  // Stage 5 holds 3 micro-batches.
  EXPECT_DOUBLE_EQ(memory_per_rank(s, l, 5).activation_bytes, 3 * 12 * 34 * sbh_t);
  // The last stage: 1 micro-batch, and the output layer (2 * 2sbh/t + 4 s b Vp / t).
  EXPECT_DOUBLE_EQ(memory_per_rank(s, l, 7).activation_bytes, 12 * 34 * sbh_t + 4 * sbh_t + 4.0 * 2048 * 51200 / 8);
  // Interleaved with v = 2: stage 0 holds 2*7 + 8 + 1 = 23 chunks of 6 layers, L (1 + (p-1)/(p v)) = 138.
  l.virtual_pipeline_size = 2;
  EXPECT_DOUBLE_EQ(memory_per_rank(s, l, 0).activation_bytes, 138 * 34 * sbh_t + 8 * sbh_t);
  // Fewer micro-batches than stages: only those are in flight.
  l.virtual_pipeline_size = 1;
  l.num_micro_batches = 2;
  EXPECT_DOUBLE_EQ(memory_per_rank(s, l, 0).activation_bytes, 2 * 12 * 34 * sbh_t + 2 * sbh_t);
  // Full recomputation: 2sbh/t per stashed layer, plus one layer recomputed in full.
  l.num_micro_batches = 64;
  l.recompute = Recompute::kFull;
  EXPECT_DOUBLE_EQ(memory_per_rank(s, l, 3).activation_bytes,
                   5 * 12 * 2 * sbh_t + sbh_t * (34 + 5.0 * 96 * 2048 / 12288));
  l.virtual_pipeline_size = 5;  // 96 layers are not 8 x 5 chunks
  EXPECT_THROW(memory_per_rank(s, l, 0), ConfigError);
}

TEST(MemoryPerRank, T5StagesSplitEncoderAndDecoder) {
  T5Shape s;
  s.encoder_num_layers = s.decoder_num_layers = 12;
  s.hidden_size = 768;
  s.ffn_hidden_size = 2048;
  s.num_attention_heads = 12;
  s.kv_channels = 64;
  s.vocab_size = 29000;
  s.padded_vocab_size = 29056;
  s.max_position_embeddings = 512;
  s.encoder_seq_length = 512;
  s.decoder_seq_length = 128;
  TrainingLayout l;
  l.pp_size = 2;
  l.num_micro_batches = 4;
  const double enc = layer_activation_bytes(s.encoder_layer(), 512, 0, l);
  const double dec = layer_activation_bytes(s.decoder_layer(), 128, 512, l);
  EXPECT_DOUBLE_EQ(dec, 10'715'136.0);
  // Encoder stage: 2 micro-batches in flight of 12 layers and the embedding mask (512 * 768 bytes).
  const MemoryEstimate e = memory_per_rank(s, l, 0);
  EXPECT_DOUBLE_EQ(e.activation_bytes, 2 * (12 * enc + 512.0 * 768));
  EXPECT_EQ(e.parameters, rank_parameter_count(s, l.rank(0)));
  // Decoder stage: 1 micro-batch of 12 layers, the encoder output 2 * 512 * 768, the decoder
  // embedding's mask 128 * 768, and the output layer 2 * 2 * 128 * 768 + 4 * 128 * 29056.
  EXPECT_DOUBLE_EQ(memory_per_rank(s, l, 1).activation_bytes,
                   12 * dec + 2.0 * 512 * 768 + 128.0 * 768 + 4.0 * 128 * 768 + 4.0 * 128 * 29056);
  l.virtual_pipeline_size = 2;
  EXPECT_THROW(memory_per_rank(s, l, 0), ConfigError);
}

}  // namespace
}  // namespace bignlp::sizing
