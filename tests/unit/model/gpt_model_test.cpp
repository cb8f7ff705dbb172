// GptModel properties that need no external reference: activation checkpointing recomputes the
// exact same gradients, results do not depend on the thread count, mixed precision tracks fp32,
// scoring agrees with the loss, and the initialisation follows Megatron's rules.
#include <gtest/gtest.h>

#include <cmath>

#include "bignlp/core/error.h"
#include "model_test_util.h"

namespace bignlp::model {
namespace {

struct TrainRun {
  float loss = 0.0f;
  std::vector<float> grads;
};

TrainRun train_once(GptConfig cfg, int threads = 0, std::size_t* peak_bytes = nullptr, std::int64_t b = 3,
                    std::int64_t t = 8) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu(threads);
  ctx.allocator = &alloc;
  GptModel model(cfg, ctx);
  model.initialize(99);
  model.parameters().zero_grad(ctx);
  testing::HostBatch batch = testing::random_batch(b, t, static_cast<int>(cfg.vocab_size), 4);
  alloc.reset_peak();
  TrainRun r;
  r.loss = model.train_micro_batch(batch.view(), DropoutRng{7, dropout_offset(0, 0, 1)}, 1.0f);
  if (peak_bytes) *peak_bytes = alloc.stats().peak_in_use;
  const TensorView g = model.parameters().flat_grad();
  r.grads.assign(g.data<float>(), g.data<float>() + g.numel());
  return r;
}

GptConfig dropout_config() {
  GptConfig c = testing::tiny_config();
  c.num_layers = 4;
  c.hidden_dropout = 0.1f;
  c.attention_dropout = 0.1f;
  return c;
}

TEST(GptModelTest, ActivationCheckpointingRecomputesIdenticalGradients) {
  const TrainRun base = train_once(dropout_config());
  struct Mode {
    CheckpointGranularity g;
    CheckpointMethod m;
    int n;
  };
  for (const Mode mode : {Mode{CheckpointGranularity::kFull, CheckpointMethod::kUniform, 1},
                          Mode{CheckpointGranularity::kFull, CheckpointMethod::kUniform, 3},
                          Mode{CheckpointGranularity::kFull, CheckpointMethod::kBlock, 2},
                          Mode{CheckpointGranularity::kSelective, CheckpointMethod::kUniform, 1},
                          Mode{CheckpointGranularity::kSelective, CheckpointMethod::kBlock, 1}}) {
    GptConfig c = dropout_config();
    c.activations_checkpoint = ActivationCheckpointing{mode.g, mode.m, mode.n};
    const TrainRun r = train_once(c);
    EXPECT_EQ(r.loss, base.loss);
    EXPECT_EQ(r.grads, base.grads) << static_cast<int>(mode.g) << "/" << static_cast<int>(mode.m) << "/" << mode.n;
  }
}

TEST(GptModelTest, FullCheckpointingLowersPeakActivationMemory) {
  GptConfig c = dropout_config();
  c.num_layers = 6;
  std::size_t peak_none = 0, peak_full = 0;
  train_once(c, 0, &peak_none);
  c.activations_checkpoint = ActivationCheckpointing{CheckpointGranularity::kFull, CheckpointMethod::kUniform, 1};
  train_once(c, 0, &peak_full);
  EXPECT_LT(peak_full, peak_none);
}

TEST(GptModelTest, ThreadCountDoesNotChangeResults) {
  // Large enough that every CPU op splits its work across threads.
  GptConfig c = dropout_config();
  c.hidden_size = 128;
  c.ffn_hidden_size = 512;
  c.seq_length = 32;
  c.max_position_embeddings = 32;
  const TrainRun one = train_once(c, 1, nullptr, 4, 32);
  const TrainRun two = train_once(c, 2, nullptr, 4, 32);
  EXPECT_EQ(one.loss, two.loss);
  EXPECT_EQ(one.grads, two.grads);
}

TEST(GptModelTest, MixedPrecisionTracksFp32) {
  const TrainRun ref = train_once(testing::tiny_config());
  for (Precision p : {Precision::kBf16, Precision::kFp16}) {
    GptConfig c = testing::tiny_config();
    c.precision = p;
    const TrainRun r = train_once(c);
    EXPECT_NEAR(r.loss, ref.loss, 0.02 * ref.loss) << precision_name(p);
    EXPECT_NE(r.loss, ref.loss);
    // Gradients agree in direction: cosine similarity of the flat vectors.
    double dot = 0, na = 0, nb = 0;
    for (std::size_t i = 0; i < ref.grads.size(); ++i) {
      dot += static_cast<double>(ref.grads[i]) * r.grads[i];
      na += static_cast<double>(ref.grads[i]) * ref.grads[i];
      nb += static_cast<double>(r.grads[i]) * r.grads[i];
    }
    EXPECT_GT(dot / std::sqrt(na * nb), 0.99) << precision_name(p);
  }
}

TEST(GptModelTest, ScoresAgreeWithTheLossAndLogits) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  GptConfig cfg = testing::tiny_config();
  GptModel model(cfg, ctx);
  model.initialize(3);
  testing::HostBatch batch = testing::random_batch(2, 8, static_cast<int>(cfg.vocab_size), 9, /*partial_mask=*/false);
  const TokenScores s = model.score(batch.view());
  double sum = 0;
  for (float lp : s.logprob) sum += lp;
  EXPECT_NEAR(-sum / 16.0, model.evaluate(batch.view()), 1e-5);
  auto acts = model.forward(batch.view(), DropoutRng{}, false);
  const std::vector<float> logits = model.logits_to_host(*acts);
  const std::int64_t vp = cfg.padded_vocab_size();
  for (std::size_t i = 0; i < 16; ++i) {
    const float* row = &logits[i * vp];
    const auto best = std::max_element(row, row + cfg.vocab_size) - row;  // padded columns excluded
    EXPECT_EQ(s.argmax[i], best);
  }
}

TEST(GptModelTest, InitialisationFollowsMegatron) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  GptConfig cfg = testing::tiny_config();
  cfg.hidden_size = 64;
  cfg.ffn_hidden_size = 256;
  cfg.init_method_std = 0.02f;
  GptModel model(cfg, ctx);
  model.initialize(1);
  auto stddev = [](const Parameter& p) {
    const float* d = p.master.data<float>();
    double s = 0;
    for (std::int64_t i = 0; i < p.numel(); ++i) s += static_cast<double>(d[i]) * d[i];
    return std::sqrt(s / static_cast<double>(p.numel()));
  };
  ParameterStore& ps = model.parameters();
  EXPECT_NEAR(stddev(*ps.find("model.language_model.encoder.layers.0.mlp.dense_h_to_4h.weight")), 0.02, 0.001);
  EXPECT_NEAR(stddev(*ps.find("model.language_model.encoder.layers.1.mlp.dense_4h_to_h.weight")), 0.02 / 2.0, 0.0005);
  EXPECT_NEAR(stddev(*ps.find("model.language_model.encoder.layers.0.self_attention.dense.weight")), 0.01, 0.001);
  EXPECT_EQ(stddev(*ps.find("model.language_model.encoder.layers.0.self_attention.query_key_value.bias")), 0.0);
  EXPECT_EQ(stddev(*ps.find("model.language_model.encoder.final_layernorm.weight")), 1.0);
  EXPECT_FALSE(ps.find("model.language_model.encoder.final_layernorm.bias")->weight_decay);
  EXPECT_TRUE(ps.find("model.language_model.embedding.word_embeddings.weight")->weight_decay);
  EXPECT_EQ(ps.numel(), cfg.num_parameters());
  EXPECT_EQ(cfg.padded_vocab_size(), 128);
}

TEST(GptModelTest, ConfigErrorsNameTheKey) {
  GptConfig c = testing::tiny_config();
  c.num_attention_heads = 5;
  try {
    c.validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.num_attention_heads"), std::string::npos);
  }
  GptConfig v;
  v.vocab_size = 50257;
  EXPECT_EQ(v.padded_vocab_size(), 50304);
  v.tensor_model_parallel_size = 8;
  EXPECT_EQ(v.padded_vocab_size(), 51200);
}

TEST(GptModelTest, FlopsFormulaMatchesTheBenchmarkRecipe) {
  GptConfig c;
  c.num_layers = 96;
  c.hidden_size = 12288;
  c.seq_length = 2048;
  c.vocab_size = 51200;
  c.make_vocab_size_divisible_by = 128;
  EXPECT_NEAR(model_flops_per_sequence(c), 2.20e15, 0.005e15);
  // 2048 * (376,883,380,224 + 695,784,701,952 + 3,774,873,600)
  EXPECT_DOUBLE_EQ(model_flops_per_sequence(c), 2048.0 * (376883380224.0 + 695784701952.0 + 3774873600.0));
}

}  // namespace
}  // namespace bignlp::model
