// The GPT forward/backward against a PyTorch implementation written independently in
// tests/python/gpt_reference.py: same weights, same batch, same dropout masks (exported from the
// Philox streams), fp32 here vs float64 there. Checks logits, loss and every parameter gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bignlp/core/file_io.h"
#include "bignlp/ops/philox.h"
#include "bignlp/tensor/safetensors.h"
#include "model_test_util.h"

namespace bignlp::model {
namespace {

namespace fs = std::filesystem;

bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

/// Keep masks (1/0 floats) of a dropout site over `numel` elements, stream (seed, offset).
std::vector<float> keep_mask(std::uint64_t seed, std::uint64_t offset, std::int64_t numel, float p) {
  std::vector<float> m(static_cast<std::size_t>(numel));
  for (std::int64_t i = 0; i < numel; ++i) m[i] = dropout_keep(seed, offset, static_cast<std::uint64_t>(i), p) ? 1.0f : 0.0f;
  return m;
}

struct Case {
  const char* name;
  float hidden_dropout;
  float attention_dropout;
  ops::GeluApprox gelu;
  std::int64_t kv_channels;
};

class GptTorchTest : public ::testing::TestWithParam<Case> {};

TEST_P(GptTorchTest, LogitsLossAndEveryGradientMatchPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const Case tc = GetParam();
  GptConfig cfg = testing::tiny_config();
  cfg.hidden_dropout = tc.hidden_dropout;
  cfg.attention_dropout = tc.attention_dropout;
  cfg.activation = tc.gelu;
  cfg.kv_channels = tc.kv_channels;
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  GptModel model(cfg, ctx);
  model.initialize(2024);
  // Non-trivial LayerNorm parameters and biases so their gradients are exercised.
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (auto& p : model.parameters().params()) {
    if (p.init == ParamInit::kNormal) continue;
    float* d = p.master.data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i) d[i] += noise(rng);
  }
  const std::int64_t b = 2, t = 8;
  testing::HostBatch batch = testing::random_batch(b, t, static_cast<int>(cfg.vocab_size), 11);
  const DropoutRng drng{1234, dropout_offset(3, 1, 2)};
  auto acts = model.forward(batch.view(), drng, /*training=*/true);
  const std::vector<float> logits = model.logits_to_host(*acts);
  const float loss = acts->loss;
  model.parameters().zero_grad(ctx);
  model.backward(*acts, 1.0f);

  TempDir dir("gpt-torch");
  SafetensorsWriter w;
  for (auto& p : model.parameters().params()) w.add(p.name, p.master);
  w.add("tokens", TensorView(batch.tokens.data(), DType::kI32, Shape{b, t}));
  w.add("labels", TensorView(batch.labels.data(), DType::kI32, Shape{b, t}));
  w.add("loss_mask", TensorView(batch.loss_mask.data(), DType::kF32, Shape{b, t}));
  std::vector<std::vector<float>> masks;
  auto add_mask = [&](const std::string& name, std::uint64_t offset, Shape shape, float p) {
    if (p == 0.0f) return;
    masks.push_back(keep_mask(drng.seed, offset, shape.numel(), p));
    w.add(name, TensorView(masks.back().data(), DType::kF32, shape));
  };
  masks.reserve(1 + 3 * cfg.num_layers);
  const std::int64_t c = cfg.hidden_size, nh = cfg.num_attention_heads;
  add_mask("mask.embedding", drng.offset_base, Shape{t, b, c}, cfg.hidden_dropout);
  for (int l = 0; l < cfg.num_layers; ++l) {
    const std::uint64_t base = drng.offset_base + 1 + 3 * static_cast<std::uint64_t>(l);
    add_mask(fmt::format("mask.{}.attention", l), base, Shape{b, nh, t, t}, cfg.attention_dropout);
    add_mask(fmt::format("mask.{}.attention_out", l), base + 1, Shape{t, b, c}, cfg.hidden_dropout);
    add_mask(fmt::format("mask.{}.mlp_out", l), base + 2, Shape{t, b, c}, cfg.hidden_dropout);
  }
  w.set_metadata("config", nlohmann::json(model.config()).dump());
  w.set_metadata("hidden_dropout", fmt::format("{}", cfg.hidden_dropout));
  w.set_metadata("attention_dropout", fmt::format("{}", cfg.attention_dropout));
  w.write(dir.path() / "in.safetensors");

  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/gpt_reference.py {} {}", BIGNLP_SOURCE_DIR,
                                      (dir.path() / "in.safetensors").string(), (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SafetensorsReader ref(dir.path() / "out.safetensors");

  auto compare = [](const std::string& what, const float* ours, const TensorView& theirs, double rtol) {
    ASSERT_EQ(theirs.dtype(), DType::kF32) << what;
    const float* r = theirs.data<float>();
    double max_ref = 0.0, max_err = 0.0;
    for (std::int64_t i = 0; i < theirs.numel(); ++i) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(r[i])));
      max_err = std::max(max_err, std::abs(static_cast<double>(ours[i]) - r[i]));
    }
    EXPECT_LE(max_err, rtol * max_ref + 1e-7) << what << ": max |ours - torch| = " << max_err << ", max |torch| = " << max_ref;
  };
  // The reference ran in float64 and was stored as float64: narrow it to compare.
  auto narrowed = [&](const std::string& name, std::vector<float>& buf) {
    const TensorView v = ref.view(name);
    buf.resize(static_cast<std::size_t>(v.numel()));
    ops::copy(ctx, v, TensorView(buf.data(), DType::kF32, v.shape()));
    return TensorView(buf.data(), DType::kF32, v.shape());
  };
  std::vector<float> tmp;
  compare("logits", logits.data(), narrowed("logits", tmp), 1e-5);
  EXPECT_NEAR(loss, narrowed("loss", tmp).data<float>()[0], 1e-5);
  int checked = 0;
  for (auto& p : model.parameters().params()) {
    compare("grad " + p.name, p.grad.data<float>(), narrowed(p.name, tmp), 2e-4);
    ++checked;
  }
  EXPECT_EQ(checked, 2 + 12 * cfg.num_layers + 2);
}

INSTANTIATE_TEST_SUITE_P(Configs, GptTorchTest,
                         ::testing::Values(Case{"no_dropout_tanh", 0.0f, 0.0f, ops::GeluApprox::kTanh, 0},
                                           Case{"dropout_erf_kv_channels", 0.2f, 0.3f, ops::GeluApprox::kErf, 6}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace bignlp::model
