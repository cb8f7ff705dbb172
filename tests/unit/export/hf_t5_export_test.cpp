// Hugging Face T5 / mT5 export: the HF-layout PyTorch forward (tests/python/hf_t5_reference.py
// score) of the exported directory equals our logits; import(export(x)) == x; what HF T5 cannot
// express is refused naming the model.* key.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "../model/t5_test_util.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/core/error.h"
#include "bignlp/export/hf_export.h"
#include "bignlp/model/hf_t5.h"
#include "export_test_util.h"

namespace bignlp::exporting {
namespace {

namespace fs = std::filesystem;

/// An HF-expressible T5 config: relative positions, RMS norm, no biases.
model::T5Config hf_like(const std::string& activation, bool tied, bool normalize_scores) {
  model::T5Config c = model::testing::tiny_t5_config();
  for (model::T5StackConfig* s : {&c.encoder, &c.decoder}) {
    s->position_embedding_type = "relative";
    s->relative_attention_num_buckets = 16;
    s->relative_attention_max_distance = 20;
    s->apply_query_key_layer_scaling = false;
    s->normalization = "rmsnorm";
    s->bias = false;
    s->activation = activation;
    s->bias_activation_fusion = activation != "gelu";  // plain gelu in the erf form (HF "gelu")
    s->normalize_attention_scores = normalize_scores;
  }
  c.share_decoder_tokens_head_embeddings = tied;
  c.tokens_head_bias = false;
  c.decoder_start_token_id = 0;
  return c;
}

struct T5Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  TempDir dir{"hf-t5-export"};
  std::unique_ptr<model::T5Model> model;
  Logger log = Logger::capturing();
  fs::path ckpt;
  explicit T5Fixture(const model::T5Config& cfg) {
    ctx.allocator = &alloc;
    model = std::make_unique<model::T5Model>(cfg, ctx);
    model->initialize(11);
    std::mt19937 rng(3);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (auto& p : model->parameters().params()) {
      if (p.init == model::ParamInit::kNormal) continue;
      float* d = p.master.data<float>();
      for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
    }
    ckpt = dir.path() / "ckpt";
    checkpoint::CheckpointState st;
    st.family = "t5";
    st.model = model->config_json();
    checkpoint::save_checkpoint(ckpt, st, model->parameters(), nullptr, ctx);
  }
};

struct Case {
  const char* name;
  const char* activation;
  bool tied, normalize_scores;
  int source_tp;
};

class HfT5Export : public ::testing::TestWithParam<Case> {};

TEST_P(HfT5Export, HfForwardOfTheExportEqualsOurLogits) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const Case tc = GetParam();
  T5Fixture f(hf_like(tc.activation, tc.tied, tc.normalize_scores));
  fs::path src = f.ckpt;
  if (tc.source_tp != 1) {
    src = f.dir.path() / "src";
    checkpoint::reshard_checkpoint(f.ckpt, src, tc.source_tp, 1, f.log);
  }
  const fs::path hf = f.dir.path() / "hf";
  export_hf_t5(src, hf, false, f.log);
  const nlohmann::json cfg = nlohmann::json::parse(read_file(hf / "config.json"));
  EXPECT_EQ(cfg.at("model_type"), "t5");
  EXPECT_EQ(cfg.at("vocab_size"), 100);
  EXPECT_EQ(cfg.at("tie_word_embeddings"), tc.tied);

  auto hb = model::testing::random_t5_batch(3, 9, 6, 100, 21);
  auto acts = f.model->forward(hb.view(), model::DropoutRng{}, false);
  const std::vector<float> ours = f.model->logits_to_host(*acts);
  const std::int64_t vp = f.model->config().padded_vocab_size();
  SafetensorsWriter w;
  const model::Batch b = hb.view();
  w.add("encoder_tokens", b.encoder_tokens);
  w.add("decoder_input_ids", b.tokens);
  w.add("labels", b.labels);
  w.add("encoder_lengths", b.encoder_lengths);
  w.add("decoder_lengths", b.decoder_lengths);
  w.write(f.dir.path() / "in.safetensors");
  ASSERT_EQ(testing::run(fmt::format("/usr/bin/python3 {} score {} {} {}", testing::python_script("hf_t5_reference.py"),
                                     hf.string(), (f.dir.path() / "in.safetensors").string(),
                                     (f.dir.path() / "out.safetensors").string())),
            0);
  SafetensorsReader r(f.dir.path() / "out.safetensors");
  const TensorView ref = r.view("logits");
  ASSERT_EQ(ref.size(2), 100);
  int compared = 0;
  for (std::int64_t i = 0; i < hb.b; ++i)
    for (std::int64_t t = 0; t < hb.dec_len[i]; ++t)
      for (std::int64_t v = 0; v < 100; ++v, ++compared)
        ASSERT_NEAR(ours[(i * hb.td + t) * vp + v], ref.data<float>()[(i * hb.td + t) * 100 + v], 2e-4)
            << "row " << i << " position " << t << " token " << v;
  EXPECT_EQ(compared, (6 + 5 + 4) * 100);
}

INSTANTIATE_TEST_SUITE_P(Variants, HfT5Export,
                         ::testing::Values(Case{"Mt5GegluUntiedTp2", "geglu", false, false, 2},
                                           Case{"T5ReluTiedScaledScores", "relu", true, true, 1},
                                           Case{"GeluErfTied", "gelu", true, false, 1},
                                           Case{"SwigluUntied", "swiglu", false, true, 1}),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(HfT5Export, ImportOfTheExportIsTheModel) {
  for (const bool tied : {false, true}) {
    T5Fixture f(hf_like(tied ? "relu" : "geglu", tied, false));
    const fs::path hf = f.dir.path() / "hf";
    export_hf_t5(f.ckpt, hf, false, f.log);
    EXPECT_THROW(export_hf_t5(f.ckpt, hf, false, f.log), ConfigError);
    const model::T5Config c = model::read_hf_t5_config(hf);
    EXPECT_EQ(c.vocab_size, 100);
    EXPECT_EQ(c.encoder.activation, tied ? "relu" : "geglu");
    EXPECT_EQ(c.share_decoder_tokens_head_embeddings, tied);
    EXPECT_EQ(c.decoder.num_layers, 3);
    EXPECT_EQ(c.encoder.kv_channels, 6);
    model::T5Model back(c, f.ctx);
    model::load_hf_t5_weights(hf, back);
    int checked = 0;
    for (auto& p : f.model->parameters().params()) {
      model::Parameter* q = back.parameters().find(p.name);
      ASSERT_NE(q, nullptr) << p.name;
      std::int64_t n = p.numel();
      if (p.name == "enc_dec_model.encoder_embedding.word_embeddings.weight" || p.name == "enc_dec_model.tokens_head.weight") {
        ASSERT_EQ(q->shape[0], 100) << p.name;  // the import does not pad
        n = q->numel();
      } else {
        ASSERT_EQ(q->shape, p.shape) << p.name;
      }
      if (tied && p.name == "enc_dec_model.enc_dec_model.decoder.model.final_layernorm.weight") {
        // HF's tied head scales by d_model^-0.5 outside the weights: the import multiplies the norm
        // weight by it, and not every float is such a product, so a value may come back 1 ulp off.
        const float* a = q->master.data<float>();
        const float* b = p.master.data<float>();
        for (std::int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1.2e-7f * std::abs(b[i])) << p.name << " " << i;
      } else {
        EXPECT_EQ(std::memcmp(q->master.raw(), p.master.raw(), static_cast<std::size_t>(n) * 4), 0) << p.name;
      }
      ++checked;
    }
    EXPECT_EQ(checked, static_cast<int>(back.parameters().params().size()));
  }
}

TEST(HfT5Export, WhatHfT5CannotExpressIsRefusedNamingTheKey) {
  auto expect_refused = [](model::T5Config c, const std::string& key) {
    T5Fixture f(c);
    try {
      export_hf_t5(f.ckpt, f.dir.path() / "hf", false, f.log);
      FAIL() << "expected a refusal naming " << key;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("ckpt"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(f.dir.path() / "hf"));
  };
  model::T5Config c = hf_like("geglu", false, false);
  c.encoder.position_embedding_type = c.decoder.position_embedding_type = "learned_absolute";
  expect_refused(c, "model.encoder.position_embedding_type");
  c = hf_like("geglu", false, false);
  c.encoder.bias = c.decoder.bias = true;
  expect_refused(c, "model.encoder.bias");
  c = hf_like("geglu", false, false);
  c.encoder.normalization = c.decoder.normalization = "layernorm";
  expect_refused(c, "model.encoder.normalization");
  c = hf_like("relu", true, false);
  c.tokens_head_bias = true;
  expect_refused(c, "model.tokens_head_bias");
  c = hf_like("geglu", false, false);
  c.encoder.apply_query_key_layer_scaling = c.decoder.apply_query_key_layer_scaling = true;
  expect_refused(c, "model.encoder.apply_query_key_layer_scaling");
  c = hf_like("geglu", false, false);
  c.share_token_embeddings = false;
  expect_refused(c, "model.share_token_embeddings");
  c = hf_like("geglu", false, false);
  c.decoder.activation = "reglu";
  expect_refused(c, "model.decoder.activation");
  c = hf_like("geglu", false, false);
  c.encoder.bias_activation_fusion = c.decoder.bias_activation_fusion = false;
  expect_refused(c, "model.encoder.bias_activation_fusion");
  // A GPT checkpoint is not a T5.
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  TempDir dir("hf-t5-gpt");
  testing::write_tiny_checkpoint(dir.path() / "ckpt", dir.path() / "tok", ctx);
  Logger log = Logger::capturing();
  EXPECT_THROW(export_hf_t5(dir.path() / "ckpt", dir.path() / "hf", false, log), ConfigError);
}

}  // namespace
}  // namespace bignlp::exporting
