// The p-tuning prompt encoder (LSTM, MLP, TP-MLP) and one GPT prompt-learning step against an
// independent PyTorch implementation (tests/python/prompt_learning_reference.py, float64).
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"
#include "bignlp/tensor/safetensors.h"
#include "bignlp/train/optimizer.h"
#include "bignlp/tune/prompt_model.h"

using namespace bignlp;
using namespace bignlp::tune;

namespace {

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

std::vector<float> random_vector(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void expect_close(const std::string& what, const std::vector<float>& ours, const TensorView& theirs, double rtol) {
  ASSERT_EQ(static_cast<std::int64_t>(ours.size()), theirs.numel()) << what;
  const float* r = theirs.data<float>();
  double max_ref = 0.0, max_err = 0.0;
  for (std::int64_t i = 0; i < theirs.numel(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(r[i])));
    max_err = std::max(max_err, std::abs(static_cast<double>(ours[i]) - r[i]));
  }
  EXPECT_LE(max_err, rtol * max_ref + 1e-7) << what << ": max |ours - torch| = " << max_err << ", max |torch| = " << max_ref;
  EXPECT_GT(max_ref, 0.0) << what << " is all zeros (nothing checked)";
}

std::vector<float> grad_of(const ops::OpContext& ctx, const model::Parameter& p) {
  std::vector<float> v(static_cast<std::size_t>(p.numel()));
  ops::copy(ctx, p.grad, TensorView(v.data(), DType::kF32, p.shape));
  return v;
}

struct EncoderCase {
  const char* type;
  int num_layers;
  std::int64_t eh;
};

class PromptEncoderTorch : public ::testing::TestWithParam<EncoderCase> {};

TEST_P(PromptEncoderTorch, ForwardAndBackwardMatchPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const EncoderCase c = GetParam();
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  PromptEncoderConfig cfg;
  cfg.type = parse_encoder_type(c.type);
  cfg.virtual_tokens = 6;
  cfg.hidden = 8;
  cfg.encoder_hidden = c.eh;
  cfg.num_layers = c.num_layers;
  cfg.init_std = 0.3f;
  model::ParameterStore store;
  PromptEncoder enc(cfg, store);
  store.allocate(alloc, DType::kF32);
  store.zero_grad(ctx);
  enc.initialize(ctx, store, 7);
  // Biases start at 0 for tpmlp: perturb every weight so each path is exercised.
  std::uint32_t seed = 100;
  for (auto* p : enc.parameters()) {
    std::vector<float> v = host_values(ctx, *p);
    const std::vector<float> noise = random_vector(v.size(), ++seed, 0.2f);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] += noise[i];
    store.assign(ctx, *p, TensorView(v.data(), DType::kF32, p->shape));
  }
  const std::vector<float> name_rows = random_vector(2 * 8, 11);  // a 2-token task name
  const std::vector<float> dout = random_vector(6 * 8, 12);
  PromptEncoderPass pass;
  const std::vector<float> out = enc.forward(ctx, name_rows, pass);
  enc.backward(ctx, pass, dout);

  TempDir dir("prompt-encoder-torch");
  SafetensorsWriter w;
  for (auto* p : enc.parameters()) w.add(p->name, p->value);
  w.add("taskname_rows", TensorView(const_cast<float*>(name_rows.data()), DType::kF32, Shape{2, 8}));
  w.add("dout", TensorView(const_cast<float*>(dout.data()), DType::kF32, Shape{6, 8}));
  w.set_metadata("case", nlohmann::json{{"mode", "encoder"}, {"type", c.type}, {"n", 6}, {"h", 8},
                                        {"eh", cfg.effective_encoder_hidden()}, {"num_layers", c.num_layers}}
                             .dump());
  w.write(dir.path() / "in.safetensors");
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/prompt_learning_reference.py {} {}",
                                      BIGNLP_SOURCE_DIR, (dir.path() / "in.safetensors").string(),
                                      (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SafetensorsReader ref(dir.path() / "out.safetensors");
  expect_close("out", out, ref.view("out"), 1e-5);
  for (auto* p : enc.parameters()) {
    const std::vector<float> g = grad_of(ctx, *p);
    if (p->name == "prompt_encoder.embedding.weight") {
      // Rows 0..1 are the task name's: no gradient reaches the embedding there.
      for (int i = 0; i < 16; ++i) EXPECT_EQ(g[i], 0.0f);
    }
    expect_close("grad " + p->name, g, ref.view(p->name), 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PromptEncoderTorch,
                         ::testing::Values(EncoderCase{"lstm", 2, 0}, EncoderCase{"lstm", 1, 3}, EncoderCase{"mlp", 3, 5},
                                           EncoderCase{"tpmlp", 2, 12}),
                         [](const auto& info) { return fmt::format("{}_{}layers", info.param.type, info.param.num_layers); });

model::GptConfig tiny_gpt() {
  model::GptConfig c;
  c.vocab_size = 100;
  c.make_vocab_size_divisible_by = 64;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.ffn_hidden_size = 32;
  c.num_attention_heads = 2;
  c.init_method_std = 0.2f;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  return c;
}

TEST(PromptLearningStep, LossGradientsAndAdamStepMatchPyTorchAndTheBaseStaysBitIdentical) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const model::GptConfig gc = tiny_gpt();
  auto base = std::make_unique<model::GptModel>(gc, ctx, parallel::ParallelContext{},
                                                [](const model::Parameter&) { return false; });
  base->initialize(5);
  model::GptModel* gpt = base.get();
  const std::int32_t start = 100, pad = 99;  // pseudo ids from the vocabulary size on
  PromptModelConfig pc;
  pc.style = PromptStyle::kPTuning;
  pc.virtual_tokens = 4;
  pc.pseudo_start = start;
  pc.pad_id = pad;
  pc.encoder.type = EncoderType::kLstm;
  pc.encoder.num_layers = 2;
  pc.tasks.push_back(PromptTaskSpec{"squad", {17, 42}, true, {}});
  PromptModel m(pc, std::move(base), ctx);
  m.initialize(3);
  const std::vector<float> base_before(gpt->parameters().flat_value().data<float>(),
                                       gpt->parameters().flat_value().data<float>() + gpt->parameters().numel());
  EXPECT_EQ(gpt->parameters().trainable_numel(), 0);
  // Two rows: 4 virtual tokens first, then text; answer-only loss on the last labels.
  const std::int64_t B = 2, T = 9;
  std::vector<std::int32_t> tokens = {100, 101, 102, 103, 5, 6, 7, 8, 9,  //
                                      10, 100, 101, 102, 103, 11, 12, 13, 14};
  std::vector<std::int32_t> labels = {101, 102, 103, 5, 6, 7, 8, 9, 98,  //
                                      100, 101, 102, 103, 11, 12, 13, 14, 15};
  std::vector<float> mask = {0, 0, 0, 0, 0, 0, 1, 1, 1,  //
                             0, 0, 0, 0, 0, 0, 0, 1, 1};
  std::vector<std::int32_t> task_ids = {0, 0};
  model::Batch batch;
  batch.tokens = TensorView(tokens.data(), DType::kI32, Shape{B, T});
  batch.labels = TensorView(labels.data(), DType::kI32, Shape{B, T});
  batch.loss_mask = TensorView(mask.data(), DType::kF32, Shape{B, T});
  batch.task_ids = TensorView(task_ids.data(), DType::kI32, Shape{B});
  m.parameters().zero_grad(ctx);
  auto acts = m.forward(batch, model::DropoutRng{}, /*training=*/true);
  const float loss = acts->loss;
  m.backward(*acts, 1.0f);
  std::map<std::string, std::vector<float>> grads;
  for (const auto& p : m.parameters().params()) grads[p.name] = grad_of(ctx, p);
  train::OptimizerConfig oc;
  oc.lr = 1e-2;
  oc.beta1 = 0.9;
  oc.beta2 = 0.98;
  oc.weight_decay = 0.01;
  const double clip = 0.5;
  train::AdamOptimizer opt(m.parameters(), oc, ctx, parallel::ParallelContext{}, nullptr);
  opt.step(oc.lr, 1.0, clip);
  // The frozen base: bit-identical.
  EXPECT_EQ(std::memcmp(base_before.data(), gpt->parameters().flat_value().data<float>(),
                        base_before.size() * sizeof(float)),
            0);

  TempDir dir("prompt-step-torch");
  SafetensorsWriter w;
  for (const auto& p : gpt->parameters().params()) w.add(p.name, p.value);
  w.add("tokens", batch.tokens);
  w.add("labels", batch.labels);
  w.add("loss_mask", batch.loss_mask);
  std::vector<std::int32_t> name_ids = {17, 42};
  w.add("taskname_ids", TensorView(name_ids.data(), DType::kI32, Shape{2}));
  w.set_metadata("case", nlohmann::json{{"mode", "step"}, {"type", "lstm"}, {"n", 4}, {"h", 16}, {"eh", 8},
                                        {"num_layers", 2}, {"num_layers_lm", gc.num_layers},
                                        {"heads", gc.num_attention_heads}, {"pseudo_start", start}, {"pad", pad},
                                        {"lr", oc.lr}, {"betas", {oc.beta1, oc.beta2}}, {"eps", oc.eps},
                                        {"weight_decay", oc.weight_decay}, {"clip", clip}}
                             .dump());
  // Encoder weights before the step: rebuild them (initialize is deterministic in the seed).
  PromptModel fresh(pc, std::make_unique<model::GptModel>(gc, ctx, parallel::ParallelContext{},
                                                          [](const model::Parameter&) { return false; }),
                    ctx);
  fresh.initialize(3);
  for (const auto& p : fresh.parameters().params()) w.add(p.name, p.value);
  w.write(dir.path() / "in.safetensors");
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/prompt_learning_reference.py {} {}",
                                      BIGNLP_SOURCE_DIR, (dir.path() / "in.safetensors").string(),
                                      (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SafetensorsReader ref(dir.path() / "out.safetensors");
  EXPECT_NEAR(loss, ref.view("loss").data<float>()[0], 1e-5);
  int checked = 0;
  for (auto& p : m.parameters().params()) {
    expect_close("grad " + p.name, grads[p.name], ref.view("grad." + p.name), 2e-4);
    expect_close("updated " + p.name, host_values(ctx, p), ref.view("new." + p.name), 1e-4);
    ++checked;
  }
  EXPECT_EQ(checked, 1 + 2 * 2 * 4 + 4);  // embedding, 2 layers x 2 directions x 4 LSTM tensors, 2 linears
}

}  // namespace
