// The model seam: the family registry, a second decoder family (RMSNorm + SwiGLU + no biases,
// defined only in tests/support) against an independent PyTorch forward/backward, and the spec-
// driven block's general attention path (padding, cross-attention, position bias) against the
// fused GPT path and against finite differences.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/model_family.h"
#include "bignlp/model/transformer_layer.h"
#include "bignlp/tensor/safetensors.h"
#include "model_test_util.h"
#include "toy_decoder_family.h"

namespace bignlp::model {
namespace {

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

TEST(ModelFamilyRegistry, BuiltinBuildsGptAndNamesKnownFamiliesOnError) {
  const ModelFamilyRegistry r = ModelFamilyRegistry::builtin();
  EXPECT_TRUE(r.contains("gpt"));
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const GptConfig cfg = testing::tiny_config();
  auto m = r.build("gpt", nlohmann::json(cfg), ctx);
  EXPECT_EQ(m->family(), "gpt");
  EXPECT_EQ(m->num_parameters(), cfg.num_parameters());
  EXPECT_EQ(m->config_json().get<GptConfig>().hidden_size, cfg.hidden_size);
  try {
    r.get("bert");
    FAIL() << "an unknown family must throw";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model family 'bert'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gpt"), std::string::npos) << e.what();
  }
  ModelFamilyRegistry copy = r;
  EXPECT_THROW(copy.add(ModelFamily{"gpt", "again", r.get("gpt").build}), Error);
}

TEST(ModelFamilyRegistry, ToyFamilyPlugsInWithItsOwnBlock) {
  const ModelFamilyRegistry r = test_support::registry_with_toy_family();
  EXPECT_EQ(r.names(), (std::vector<std::string>{"gpt", "t5", "toy-llama"}));
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  auto m = r.build("toy-llama", nlohmann::json(testing::tiny_config()), ctx);
  EXPECT_EQ(m->family(), "toy-llama");
  bool has_gate = false;
  for (const auto& p : m->parameters().params()) {
    EXPECT_FALSE(p.name.ends_with(".bias")) << p.name << ": the toy block has no biases";
    has_gate = has_gate || p.name.ends_with("mlp.dense_h_to_4h_2.weight");
  }
  EXPECT_TRUE(has_gate);
}

/// Max |ours - theirs| <= rtol * max |theirs| (+ a tiny floor).
void expect_close(const std::string& what, const float* ours, const TensorView& theirs, double rtol) {
  const float* r = theirs.data<float>();
  double max_ref = 0.0, max_err = 0.0;
  for (std::int64_t i = 0; i < theirs.numel(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(r[i])));
    max_err = std::max(max_err, std::abs(static_cast<double>(ours[i]) - r[i]));
  }
  EXPECT_LE(max_err, rtol * max_ref + 1e-7) << what << ": max |ours - torch| = " << max_err << ", max |torch| = " << max_ref;
}

TEST(ModelFamilyTorch, ToyFamilyLogitsLossAndEveryGradientMatchPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  GptConfig cfg = testing::tiny_config();
  cfg.kv_channels = 6;  // projection width 24 != hidden 32
  const ModelFamilyRegistry r = test_support::registry_with_toy_family();
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  auto model = r.build("toy-llama", nlohmann::json(cfg), ctx);
  model->initialize(99);
  // Norm weights start at 1: perturb them so their gradients and effect are exercised.
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (auto& p : model->parameters().params()) {
    if (p.init == ParamInit::kNormal) continue;
    float* d = p.master.data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
  }
  const std::int64_t b = 2, t = 7;
  testing::HostBatch batch = testing::random_batch(b, t, static_cast<int>(cfg.vocab_size), 17);
  auto acts = model->forward(batch.view(), DropoutRng{}, /*training=*/true);
  const std::vector<float> logits = dynamic_cast<GptModel&>(*model).logits_to_host(*acts);
  const float loss = acts->loss;
  model->parameters().zero_grad(ctx);
  model->backward(*acts, 1.0f);

  TempDir dir("toy-family-torch");
  SafetensorsWriter w;
  for (auto& p : model->parameters().params()) w.add(p.name, p.master);
  w.add("tokens", TensorView(batch.tokens.data(), DType::kI32, Shape{b, t}));
  w.add("labels", TensorView(batch.labels.data(), DType::kI32, Shape{b, t}));
  w.add("loss_mask", TensorView(batch.loss_mask.data(), DType::kF32, Shape{b, t}));
  nlohmann::json c;
  c["num_layers"] = cfg.num_layers;
  c["num_attention_heads"] = cfg.num_attention_heads;
  c["kv_channels"] = cfg.head_size();
  w.set_metadata("config", c.dump());
  w.set_metadata("block", nlohmann::json{{"normalization", "rmsnorm"}, {"activation", "silu"}, {"gated", true},
                                         {"eps", cfg.layernorm_epsilon}}
                              .dump());
  w.write(dir.path() / "in.safetensors");
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/decoder_family_reference.py {} {}",
                                      BIGNLP_SOURCE_DIR, (dir.path() / "in.safetensors").string(),
                                      (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SafetensorsReader ref(dir.path() / "out.safetensors");
  const auto narrowed = [&](const std::string& name, std::vector<float>& buf) {
    const TensorView v = ref.view(name);
    buf.resize(static_cast<std::size_t>(v.numel()));
    ops::copy(ctx, v, TensorView(buf.data(), DType::kF32, v.shape()));
    return TensorView(buf.data(), DType::kF32, v.shape());
  };
  std::vector<float> tmp;
  expect_close("logits", logits.data(), narrowed("logits", tmp), 1e-5);
  EXPECT_NEAR(loss, narrowed("loss", tmp).data<float>()[0], 1e-5);
  int checked = 0;
  for (auto& p : model->parameters().params()) {
    expect_close("grad " + p.name, p.grad.data<float>(), narrowed(p.name, tmp), 2e-4);
    ++checked;
  }
  // word, position, per layer 2 norms + qkv, dense, fc1, fc1_2, fc2 (weights only), final norm.
  EXPECT_EQ(checked, 2 + 7 * cfg.num_layers + 1);
}

// --- the block on its own ---------------------------------------------------------------------

struct LayerHarness {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ParameterStore store;
  std::unique_ptr<TransformerLayer> layer;

  LayerHarness(const BlockSpec& spec, int layer_index, std::uint64_t seed) {
    ctx.allocator = &alloc;
    layer = std::make_unique<TransformerLayer>(spec, store, layer_index);
    store.allocate(alloc, DType::kF32);
    store.initialize(ctx, seed);
    // Non-trivial norms and biases.
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (auto& p : store.params()) {
      if (p.init == ParamInit::kNormal) continue;
      float* d = p.master.data<float>();
      for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
    }
  }
};

std::vector<float> random_vector(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(TransformerLayerSpec, GeneralAttentionPathEqualsTheFusedGptPath) {
  // All keys valid: the padded (general) path must give the fused path's results.
  GptConfig cfg = testing::tiny_config();
  cfg.attention_dropout = 0.25f;
  cfg.hidden_dropout = 0.1f;
  const BlockSpec spec = gpt_block_spec(cfg);
  LayerHarness h(spec, 1, 5);
  const std::int64_t b = 2, t = 6, c = cfg.hidden_size, n = b * t;
  std::vector<float> x = random_vector(static_cast<std::size_t>(n * c), 1);
  std::vector<std::int32_t> lengths(static_cast<std::size_t>(b), static_cast<std::int32_t>(t));
  struct Run {
    std::vector<float> out, dx, grads;
  };
  const auto run = [&](bool padded) {
    LayerPass pass;
    pass.batch = b;
    pass.seq = t;
    pass.training = true;
    pass.seed = 42;
    pass.offset_base = 7 << 20;
    if (padded) pass.key_lengths = TensorView(lengths.data(), DType::kI32, Shape{b});
    Run r;
    r.out.resize(x.size());
    r.dx = random_vector(x.size(), 2);
    const TensorView xv(x.data(), DType::kF32, Shape{n, c});
    TransformerLayerActivations acts;
    h.layer->forward(h.ctx, pass, xv, TensorView(r.out.data(), DType::kF32, Shape{n, c}), acts, ActivationStorage::kAll);
    h.store.zero_grad(h.ctx);
    h.layer->backward(h.ctx, pass, xv, acts, TensorView(r.dx.data(), DType::kF32, Shape{n, c}));
    const TensorView g = h.store.flat_grad();
    r.grads.assign(g.data<float>(), g.data<float>() + g.numel());
    return r;
  };
  const Run fused = run(false), general = run(true);
  const auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b2) {
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b2[i]));
    return m;
  };
  EXPECT_LE(max_diff(fused.out, general.out), 1e-5);
  EXPECT_LE(max_diff(fused.dx, general.dx), 1e-5);
  EXPECT_LE(max_diff(fused.grads, general.grads), 1e-4);
}

TEST(TransformerLayerSpec, InputsTheSpecDoesNotUseAreRefused) {
  const GptConfig cfg = testing::tiny_config();
  LayerHarness h(gpt_block_spec(cfg), 0, 5);
  const std::int64_t b = 1, t = 2, c = cfg.hidden_size, nh = cfg.num_attention_heads;
  std::vector<float> x(static_cast<std::size_t>(b * t * c), 0.5f), out(x.size()), bias(static_cast<std::size_t>(nh * t * t));
  LayerPass pass;
  pass.batch = b;
  pass.seq = t;
  TransformerLayerActivations acts;
  const TensorView xv(x.data(), DType::kF32, Shape{b * t, c}), ov(out.data(), DType::kF32, Shape{b * t, c});
  pass.position_bias = TensorView(bias.data(), DType::kF32, Shape{nh, t, t});
  EXPECT_THROW(h.layer->forward(h.ctx, pass, xv, ov, acts, ActivationStorage::kNone), Error);
  pass.position_bias = {};
  pass.encoder_output = TensorView(x.data(), DType::kF32, Shape{t, b, c});
  EXPECT_THROW(h.layer->forward(h.ctx, pass, xv, ov, acts, ActivationStorage::kNone), Error);
  pass.encoder_output = {};
  EXPECT_NO_THROW(h.layer->forward(h.ctx, pass, xv, ov, acts, ActivationStorage::kNone));
}

BlockSpec decoder_block_spec() {
  BlockSpec s;
  s.hidden_size = 8;
  s.ffn_hidden_size = 12;
  s.num_attention_heads = 2;
  s.kv_channels = 3;
  s.num_layers = 2;
  s.activation = ops::Activation::kGeluTanh;
  s.gated_linear_unit = true;
  s.self_attention_mask = SelfAttentionMask::kCausal;
  s.cross_attention = true;
  s.position_bias = PositionBias::kRelative;
  s.apply_query_key_layer_scaling = true;
  s.init_method_std = 0.3f;
  s.naming = BlockNaming::t5_decoder();
  return s;
}

TEST(TransformerLayerSpec, DecoderBlockNamesFollowNemoT5) {
  LayerHarness h(decoder_block_spec(), 0, 1);
  std::vector<std::string> names;
  for (const auto& p : h.store.params()) names.push_back(p.name);
  const std::string pre = "enc_dec_model.enc_dec_model.decoder.model.layers.0.";
  for (const char* want : {"input_layernorm.weight", "self_attention.query_key_value.weight", "self_attention.dense.bias",
                           "post_attention_layernorm.weight", "inter_attention.query.weight",
                           "inter_attention.key_value.weight", "inter_attention.dense.weight",
                           "post_inter_attention_layernorm.bias", "mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h_2.weight",
                           "mlp.dense_4h_to_h.weight"})
    EXPECT_NE(std::find(names.begin(), names.end(), pre + want), names.end()) << pre + want;
}

// A decoder block with padding, cross-attention over padded encoder rows, a scaled relative
// position bias and GeGLU: analytic gradients of the input, the encoder output, the bias and the
// weights against central finite differences of L = sum(out * R) (fp32, small shapes).
TEST(TransformerLayerSpec, DecoderBlockGradientsMatchFiniteDifferences) {
  const BlockSpec spec = decoder_block_spec();
  LayerHarness h(spec, 1, 9);  // layer 2 of the stack: the bias counts twice
  const std::int64_t b = 2, t = 4, te = 5, c = spec.hidden_size, n = b * t, nh = spec.num_attention_heads;
  std::vector<float> x = random_vector(static_cast<std::size_t>(n * c), 11);
  std::vector<float> enc = random_vector(static_cast<std::size_t>(te * b * c), 12);
  std::vector<float> bias = random_vector(static_cast<std::size_t>(nh * t * t), 13, 0.5f);
  std::vector<float> weights_r = random_vector(static_cast<std::size_t>(n * c), 14);
  std::vector<std::int32_t> key_lengths{4, 3}, enc_lengths{5, 2};
  const auto make_pass = [&] {
    LayerPass pass;
    pass.batch = b;
    pass.seq = t;
    pass.key_lengths = TensorView(key_lengths.data(), DType::kI32, Shape{b});
    pass.position_bias = TensorView(bias.data(), DType::kF32, Shape{nh, t, t});
    pass.encoder_output = TensorView(enc.data(), DType::kF32, Shape{te, b, c});
    pass.encoder_lengths = TensorView(enc_lengths.data(), DType::kI32, Shape{b});
    return pass;
  };
  // Rows of padded queries (decoder row 1, t = 3) feed nothing valid: leave them out of L.
  std::vector<float> row_weight(static_cast<std::size_t>(n), 1.0f);
  for (std::int64_t ti = 0; ti < t; ++ti)
    for (std::int64_t bi = 0; bi < b; ++bi)
      if (ti >= key_lengths[bi]) row_weight[ti * b + bi] = 0.0f;
  const auto objective = [&]() {
    std::vector<float> out(x.size());
    TransformerLayerActivations acts;
    h.layer->forward(h.ctx, make_pass(), TensorView(x.data(), DType::kF32, Shape{n, c}),
                     TensorView(out.data(), DType::kF32, Shape{n, c}), acts, ActivationStorage::kNone);
    double l = 0.0;
    for (std::int64_t i = 0; i < n * c; ++i) l += static_cast<double>(out[i]) * weights_r[i] * row_weight[i / c];
    return l;
  };
  // Analytic.
  std::vector<float> out(x.size()), dx(x.size()), d_enc(enc.size(), 0.0f), d_bias(bias.size(), 0.0f);
  for (std::int64_t i = 0; i < n * c; ++i) dx[i] = weights_r[i] * row_weight[i / c];
  {
    LayerPass pass = make_pass();
    pass.encoder_output_grad = TensorView(d_enc.data(), DType::kF32, Shape{te, b, c});
    pass.position_bias_grad = TensorView(d_bias.data(), DType::kF32, Shape{nh, t, t});
    TransformerLayerActivations acts;
    const TensorView xv(x.data(), DType::kF32, Shape{n, c});
    h.layer->forward(h.ctx, pass, xv, TensorView(out.data(), DType::kF32, Shape{n, c}), acts, ActivationStorage::kAll);
    h.store.zero_grad(h.ctx);
    h.layer->backward(h.ctx, pass, xv, acts, TensorView(dx.data(), DType::kF32, Shape{n, c}));
  }
  const double eps = 1e-2;
  const auto check = [&](const std::string& what, float* value, float analytic) {
    const float saved = *value;
    *value = saved + static_cast<float>(eps);
    const double up = objective();
    *value = saved - static_cast<float>(eps);
    const double down = objective();
    *value = saved;
    const double numeric = (up - down) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::abs(numeric)) << what;
  };
  for (std::int64_t i = 0; i < n * c; i += 5) check(fmt::format("dx[{}]", i), &x[i], dx[i]);
  for (std::int64_t i = 0; i < te * b * c; i += 7) check(fmt::format("d_encoder_output[{}]", i), &enc[i], d_enc[i]);
  for (std::int64_t i = 0; i < nh * t * t; i += 3) check(fmt::format("d_position_bias[{}]", i), &bias[i], d_bias[i]);
  for (auto& p : h.store.params()) {
    // fp32: the compute copy is the master; perturb it directly.
    float* v = p.value.data<float>();
    const float* g = p.grad.data<float>();
    const std::int64_t step = std::max<std::int64_t>(1, p.numel() / 4);
    for (std::int64_t i = 0; i < p.numel(); i += step) check(fmt::format("{}[{}]", p.name, i), &v[i], g[i]);
  }
}

}  // namespace
}  // namespace bignlp::model
