// The "t5" family: registry, parameter names and counts, config checks, activation checkpointing,
// and the forward logits, loss and every gradient against an independent PyTorch implementation
// of NeMo's T5 (tests/python/t5_reference.py) for learned/relative positions, gated/ungated MLPs,
// layernorm/rmsnorm, tied/untied heads.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/model_family.h"
#include "bignlp/sizing/t5_shape.h"
#include "bignlp/tensor/safetensors.h"
#include "t5_test_util.h"

namespace bignlp::model {
namespace {

using testing::random_t5_batch;
using testing::tiny_t5_config;

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

struct Env {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  Env() { ctx.allocator = &alloc; }
};

std::unique_ptr<Model> build(Env& env, const T5Config& cfg, std::uint64_t seed = 7) {
  auto m = ModelFamilyRegistry::builtin().build("t5", nlohmann::json(cfg), env.ctx);
  m->initialize(seed);
  return m;
}

/// Norms and biases start at 1/0: perturb them so their effect and gradients are exercised.
void perturb_non_normal(Model& m, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (auto& p : m.parameters().params()) {
    if (p.init == ParamInit::kNormal) continue;
    float* d = p.master.data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
  }
}

TEST(T5Model, RegistryBuildsItWithNeMoNamesAndTheSizingParameterCount) {
  Env env;
  const T5Config cfg = tiny_t5_config();
  auto m = build(env, cfg);
  EXPECT_EQ(m->family(), "t5");
  std::set<std::string> names;
  std::int64_t total = 0;
  for (const auto& p : m->parameters().params()) {
    names.insert(p.name);
    total += p.numel();
  }
  for (const char* n : {"enc_dec_model.encoder_embedding.word_embeddings.weight",
                        "enc_dec_model.encoder_embedding.position_embeddings.weight",
                        "enc_dec_model.enc_dec_model.encoder.model.layers.1.self_attention.query_key_value.weight",
                        "enc_dec_model.enc_dec_model.encoder.model.layers.0.post_attention_layernorm.bias",
                        "enc_dec_model.enc_dec_model.encoder.model.final_layernorm.weight",
                        "enc_dec_model.enc_dec_model.decoder.model.layers.2.inter_attention.key_value.weight",
                        "enc_dec_model.enc_dec_model.decoder.model.layers.0.post_inter_attention_layernorm.weight",
                        "enc_dec_model.enc_dec_model.decoder.model.final_layernorm.bias", "enc_dec_model.tokens_head.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("enc_dec_model.decoder_embedding.word_embeddings.weight")) << "shared with the encoder";
  EXPECT_EQ(total, m->num_parameters());
  EXPECT_EQ(m->num_parameters(), sizing::parameter_count(t5_shape(cfg)));
  // Round trip of the config through JSON (what checkpoints record).
  EXPECT_EQ(m->config_json().get<T5Config>().decoder.num_layers, 3);
  EXPECT_EQ(nlohmann::json(m->config_json().get<T5Config>()), m->config_json());

  T5Config mt5 = tiny_t5_config();
  mt5.encoder.position_embedding_type = mt5.decoder.position_embedding_type = "relative";
  mt5.encoder.normalization = mt5.decoder.normalization = "rmsnorm";
  mt5.encoder.bias = mt5.decoder.bias = false;
  mt5.encoder.activation = mt5.decoder.activation = "geglu";
  mt5.share_token_embeddings = false;
  mt5.share_decoder_tokens_head_embeddings = false;
  auto m2 = build(env, mt5);
  names.clear();
  total = 0;
  for (const auto& p : m2->parameters().params()) {
    names.insert(p.name);
    total += p.numel();
    EXPECT_FALSE(p.name.ends_with(".bias")) << p.name;
    EXPECT_EQ(p.name.find("position_embeddings"), std::string::npos) << p.name;
  }
  for (const char* n : {"enc_dec_model.decoder_embedding.word_embeddings.weight", "enc_dec_model.tokens_head.weight",
                        "enc_dec_model.encoder_relative_position_embedding.relative_position_embedding.weight",
                        "enc_dec_model.decoder_relative_position_embedding.relative_position_embedding.weight",
                        "enc_dec_model.enc_dec_model.decoder.model.layers.1.mlp.dense_h_to_4h_2.weight"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(total, m2->num_parameters());

  // Stacks of different widths: the count follows each stack.
  T5Config mixed = mt5;
  mixed.decoder.ffn_hidden_size = 24;
  mixed.decoder.num_attention_heads = 2;
  mixed.decoder.activation = "relu";
  mixed.decoder.bias = true;
  auto m3 = build(env, mixed);
  total = 0;
  for (const auto& p : m3->parameters().params()) total += p.numel();
  EXPECT_EQ(total, m3->num_parameters());
}

TEST(T5Model, ConfigErrorsNameTheKey) {
  Env env;
  const auto expect_error = [&](T5Config c, const std::string& key) {
    try {
      build(env, c);
      FAIL() << "expected an error naming " << key;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  T5Config c = tiny_t5_config();
  c.decoder.hidden_size = 48;
  expect_error(c, "model.decoder.hidden_size");
  c = tiny_t5_config();
  c.encoder.activation = "tanh";
  expect_error(c, "model.encoder.activation");
  c = tiny_t5_config();
  c.decoder.position_embedding_type = "relative";
  expect_error(c, "model.decoder.position_embedding_type");
  c = tiny_t5_config();
  c.encoder.position_embedding_type = c.decoder.position_embedding_type = "relative";
  c.decoder.relative_position_bias_self_attention_only = false;
  expect_error(c, "model.decoder.relative_position_bias_self_attention_only");
  c = tiny_t5_config();
  c.decoder_seq_length = 11;
  expect_error(c, "model.max_position_embeddings");
}

TEST(T5Model, BatchWithoutEncoderTokensIsRefused) {
  Env env;
  auto m = build(env, tiny_t5_config());
  auto hb = random_t5_batch(2, 9, 6, 100, 1);
  Batch b = hb.view();
  b.encoder_tokens = TensorView();
  EXPECT_THROW(m->forward(b, DropoutRng{}, false), Error);
}

TEST(T5Model, LabelsPaddedWithMinusOneOutsideTheLossMaskAreIgnored) {
  Env env;
  auto m = build(env, tiny_t5_config());
  auto hb = random_t5_batch(2, 9, 6, 100, 8);
  const float loss = m->evaluate(hb.view());
  int padded = 0;
  for (std::size_t i = 0; i < hb.labels.size(); ++i)
    if (hb.loss_mask[i] == 0.0f) {
      hb.labels[i] = -1;  // Megatron's T5 label padding
      ++padded;
    }
  ASSERT_GT(padded, 0);
  EXPECT_EQ(m->evaluate(hb.view()), loss);
  hb.loss_mask[0] = 1.0f;
  hb.labels[0] = -1;
  EXPECT_THROW(m->evaluate(hb.view()), Error);
}

struct Grads {
  float loss = 0.0f;
  std::vector<std::vector<float>> grads;
};

Grads train_once(Env& env, const T5Config& cfg, testing::T5HostBatch& hb) {
  auto m = build(env, cfg, 11);
  perturb_non_normal(*m, 5);
  m->parameters().zero_grad(env.ctx);
  Grads g;
  g.loss = m->train_micro_batch(hb.view(), DropoutRng{3, 1 << 20}, 1.0f);
  for (const auto& p : m->parameters().params()) {
    const float* d = p.grad.data<float>();
    g.grads.emplace_back(d, d + p.numel());
  }
  return g;
}

TEST(T5Model, ActivationCheckpointingGivesTheSameLossAndGradients) {
  Env env;
  T5Config base = tiny_t5_config();
  base.encoder.hidden_dropout = base.decoder.hidden_dropout = 0.1f;
  base.encoder.attention_dropout = base.decoder.attention_dropout = 0.2f;
  base.embedding_dropout = 0.1f;
  auto hb = random_t5_batch(2, 9, 6, 100, 4);
  const Grads ref = train_once(env, base, hb);
  for (int variant = 0; variant < 3; ++variant) {
    T5Config c = base;
    for (T5StackConfig* s : {&c.encoder, &c.decoder}) {
      auto& ac = s->activations_checkpoint;
      ac.granularity = variant == 2 ? CheckpointGranularity::kSelective : CheckpointGranularity::kFull;
      ac.method = variant == 0 ? CheckpointMethod::kUniform : CheckpointMethod::kBlock;
      ac.num_layers = variant == 0 ? 2 : 1;
    }
    const Grads g = train_once(env, c, hb);
    EXPECT_EQ(g.loss, ref.loss) << "variant " << variant;
    ASSERT_EQ(g.grads.size(), ref.grads.size());
    for (std::size_t i = 0; i < g.grads.size(); ++i) EXPECT_EQ(g.grads[i], ref.grads[i]) << "variant " << variant << " param " << i;
  }
  // Dropout is on: another stream changes the loss (the masks are used).
  auto m = build(env, base, 11);
  perturb_non_normal(*m, 5);
  EXPECT_NE(m->train_micro_batch(hb.view(), DropoutRng{4, 1 << 20}, 1.0f), ref.loss);
}

void expect_close(const std::string& what, const std::vector<float>& ours, const std::vector<float>& theirs,
                  double rtol) {
  ASSERT_EQ(ours.size(), theirs.size()) << what;
  double max_ref = 0.0, max_err = 0.0;
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(theirs[i])));
    max_err = std::max(max_err, std::abs(static_cast<double>(ours[i]) - theirs[i]));
  }
  EXPECT_GT(max_ref, 0.0) << what << ": the reference is all zero";
  EXPECT_LE(max_err, rtol * max_ref + 1e-7) << what << ": max |ours - torch| = " << max_err << ", max |torch| = " << max_ref;
}

struct TorchCase {
  std::string name;
  std::string position, activation, normalization;
  bool bias = true, share_embeddings = true, tied_head = true, head_bias = true, normalize_scores = true;
  bool qk_scaling = true;
};

class T5Torch : public ::testing::TestWithParam<TorchCase> {};

TEST_P(T5Torch, LogitsLossAndEveryGradientMatchPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const TorchCase& tc = GetParam();
  T5Config cfg = tiny_t5_config();
  for (T5StackConfig* s : {&cfg.encoder, &cfg.decoder}) {
    s->position_embedding_type = tc.position;
    s->relative_attention_num_buckets = 8;
    s->relative_attention_max_distance = 12;
    s->activation = tc.activation;
    s->normalization = tc.normalization;
    s->bias = tc.bias;
    s->normalize_attention_scores = tc.normalize_scores;
    s->apply_query_key_layer_scaling = tc.qk_scaling;
  }
  cfg.encoder.bias_activation_fusion = false;  // the encoder's GeLU in erf form, the decoder's tanh
  cfg.share_token_embeddings = tc.share_embeddings;
  cfg.share_decoder_tokens_head_embeddings = tc.tied_head;
  cfg.tokens_head_bias = tc.head_bias;
  Env env;
  auto model = build(env, cfg, 99);
  perturb_non_normal(*model, 3);
  const std::int64_t b = 3, te = 9, td = 6;
  auto hb = random_t5_batch(b, te, td, static_cast<int>(cfg.vocab_size), 17);
  auto acts = model->forward(hb.view(), DropoutRng{}, /*training=*/true);
  const std::vector<float> logits = dynamic_cast<T5Model&>(*model).logits_to_host(*acts);
  const float loss = acts->loss;
  model->parameters().zero_grad(env.ctx);
  model->backward(*acts, 1.0f);

  TempDir dir("t5-torch");
  SafetensorsWriter w;
  for (auto& p : model->parameters().params()) w.add(p.name, p.master);
  w.add("encoder_tokens", TensorView(hb.enc.data(), DType::kI32, Shape{b, te}));
  w.add("tokens", TensorView(hb.dec.data(), DType::kI32, Shape{b, td}));
  w.add("labels", TensorView(hb.labels.data(), DType::kI32, Shape{b, td}));
  w.add("loss_mask", TensorView(hb.loss_mask.data(), DType::kF32, Shape{b, td}));
  w.add("encoder_lengths", TensorView(hb.enc_len.data(), DType::kI32, Shape{b}));
  w.add("decoder_lengths", TensorView(hb.dec_len.data(), DType::kI32, Shape{b}));
  w.set_metadata("config", model->config_json().dump());
  w.write(dir.path() / "in.safetensors");
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/t5_reference.py {} {}", BIGNLP_SOURCE_DIR,
                                      (dir.path() / "in.safetensors").string(), (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SafetensorsReader ref(dir.path() / "out.safetensors");
  const auto host = [&](const std::string& name) {
    const TensorView v = ref.view(name);
    std::vector<float> buf(static_cast<std::size_t>(v.numel()));
    ops::copy(env.ctx, v, TensorView(buf.data(), DType::kF32, v.shape()));
    return buf;
  };
  // Logits of the valid decoder positions (NeMo attends uniformly from padded queries).
  const std::int64_t vp = cfg.padded_vocab_size();
  const std::vector<float> ref_logits = host("logits");
  std::vector<float> ours_valid, ref_valid;
  for (std::int64_t bi = 0; bi < b; ++bi)
    for (std::int64_t t = 0; t < hb.dec_len[bi]; ++t)
      for (std::int64_t v = 0; v < vp; ++v) {
        ours_valid.push_back(logits[(bi * td + t) * vp + v]);
        ref_valid.push_back(ref_logits[(bi * td + t) * vp + v]);
      }
  expect_close("logits", ours_valid, ref_valid, 1e-5);
  EXPECT_NEAR(loss, host("loss")[0], 1e-5 * std::abs(loss));
  int checked = 0;
  for (auto& p : model->parameters().params()) {
    const float* g = p.grad.data<float>();
    expect_close("grad " + p.name, std::vector<float>(g, g + p.numel()), host(p.name), 2e-4);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(model->parameters().params().size()));
  EXPECT_GT(checked, 20);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, T5Torch,
    ::testing::Values(TorchCase{"LearnedGeluLayerNormTied", "learned_absolute", "gelu", "layernorm"},
                      TorchCase{"RelativeGegluRmsNormUntied", "relative", "geglu", "rmsnorm", false, false, false, false},
                      TorchCase{"RelativeReluLayerNormNoScaleTiedNoBias", "relative", "relu", "layernorm", true, true,
                                true, false, false, true},
                      TorchCase{"LearnedSwigluRmsNormNoQkScaling", "learned_absolute", "swiglu", "rmsnorm", false,
                                false, true, true, true, false},
                      TorchCase{"RelativeGegluLayerNormQkScaling", "relative", "geglu", "layernorm", true, true, true,
                                true, true, true}),
    [](const ::testing::TestParamInfo<TorchCase>& i) { return i.param.name; });

}  // namespace
}  // namespace bignlp::model
