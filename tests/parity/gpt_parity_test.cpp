// The whole engine on the GPU against the CPU reference: one GPT training step (loss, every
// parameter gradient, the Adam update) in fp32 and bf16 with and without activation checkpointing,
// and the loss curve of a gpt3/126m-shaped model over its first steps.
#include <cmath>

#include "bignlp/model/gpt.h"
#include "bignlp/train/optimizer.h"
#include "parity_util.h"

namespace bignlp::parity {
namespace {

using model::GptConfig;

/// ‖a - b‖ / ‖b‖ (the whole-tensor relative error; elementwise checks are too noisy for gradients
/// that went through several bf16 layers).
double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / (den > 0.0 ? den : 1.0));
}

struct Batch {
  std::vector<std::int32_t> tokens, labels;
  std::vector<float> mask;
  std::int64_t b, t;
  model::Batch view() {
    return {.tokens = TensorView(tokens.data(), DType::kI32, Shape{b, t}),
            .labels = TensorView(labels.data(), DType::kI32, Shape{b, t}),
            .loss_mask = TensorView(mask.data(), DType::kF32, Shape{b, t})};
  }
};

Batch make_batch(std::int64_t b, std::int64_t t, std::int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  Batch out{{}, {}, {}, b, t};
  for (std::int64_t i = 0; i < b * t; ++i) {
    out.tokens.push_back(static_cast<std::int32_t>(rng() % vocab));
    out.labels.push_back(static_cast<std::int32_t>(rng() % vocab));
    out.mask.push_back(i % 7 == 3 ? 0.0f : 1.0f);
  }
  return out;
}

/// Everything one run of `steps` training steps produced.
struct Trace {
  std::vector<float> losses;
  std::vector<std::vector<float>> grads;   // every parameter's gradient after step 0
  std::vector<std::vector<float>> params;  // every master weight after the last step
  std::vector<std::string> names;
};

class GptParity : public CudaParity {
 protected:
  Trace train(const ops::OpContext& ctx, const GptConfig& c, Batch& batch, int steps) {
    model::GptModel m(c, ctx);
    m.initialize(2024);
    train::AdamOptimizer opt(m.parameters(), train::OptimizerConfig{"fused_adam", 1e-3, 0.9, 0.95, 1e-8, 0.1}, ctx);
    Trace tr;
    for (int s = 0; s < steps; ++s) {
      m.parameters().zero_grad(ctx);
      tr.losses.push_back(m.train_micro_batch(batch.view(), model::DropoutRng{77, model::dropout_offset(s, 0, 1)}, 1.0f));
      if (s == 0)
        for (auto& p : m.parameters().params()) {
          tr.grads.push_back(values(p.grad));
          tr.names.push_back(p.name);
        }
      opt.step(1e-3, 1.0, 1.0);
    }
    for (auto& p : m.parameters().params()) tr.params.push_back(values(p.master));
    return tr;
  }

  /// param_tol < 0 skips the updated weights: after Adam (whose first steps move every weight by
  /// about lr * sign(g)) a 16-bit rounding difference that flips the sign of a near-zero gradient
  /// moves that weight by 2 lr, which says nothing about the kernels; the next step's loss covers
  /// the update instead, and tests of adamw_step compare the optimizer on equal gradients.
  void compare(const Trace& gpu, const Trace& cpu, double loss_tol, double grad_tol, double param_tol) {
    ASSERT_EQ(gpu.losses.size(), cpu.losses.size());
    for (std::size_t s = 0; s < cpu.losses.size(); ++s)
      EXPECT_NEAR(gpu.losses[s], cpu.losses[s], loss_tol * std::max(1.0f, std::abs(cpu.losses[s]))) << "step " << s;
    ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
    for (std::size_t i = 0; i < cpu.grads.size(); ++i) {
      EXPECT_LE(relative_l2(gpu.grads[i], cpu.grads[i]), grad_tol) << "gradient of " << cpu.names[i];
      if (param_tol >= 0.0)
        EXPECT_LE(relative_l2(gpu.params[i], cpu.params[i]), param_tol) << "updated " << cpu.names[i];
    }
  }

  static GptConfig small_config(model::Precision precision) {
    GptConfig c;
    c.vocab_size = 1000;  // padded to 1024
    c.seq_length = 256;
    c.num_layers = 2;
    c.hidden_size = 256;
    c.num_attention_heads = 4;  // head size 64: the flash kernels in bf16
    c.init_method_std = 0.02f;
    c.hidden_dropout = 0.1f;
    c.attention_dropout = 0.1f;
    c.precision = precision;
    return c;
  }
};

TEST_F(GptParity, TrainingStepFp32MatchesCpu) {
  // Full fp32 GEMMs (no TF32) on a context of its own, with its own allocator (one stream each).
  ops::CudaContextOptions o = ops::cuda_options_from_environment(process_environment());
  o.allow_tf32 = false;
  ops::CudaContext strict(o);
  auto alloc = make_cuda_allocator(strict.device);
  const ops::OpContext ctx = strict.op_context(*alloc);
  const GptConfig c = small_config(model::Precision::kFp32);
  Batch batch = make_batch(2, c.seq_length, c.vocab_size, 1);
  const Trace g = train(ctx, c, batch, 2);
  strict.synchronize();
  const Trace r = train(cpu_, c, batch, 2);
  compare(g, r, 1e-4, 1e-3, 1e-3);
}

TEST_F(GptParity, TrainingStepBf16MatchesCpuWithEveryCheckpointing) {
  for (auto gran : {model::CheckpointGranularity::kNone, model::CheckpointGranularity::kSelective,
                    model::CheckpointGranularity::kFull}) {
    GptConfig c = small_config(model::Precision::kBf16);
    c.activations_checkpoint = {gran, model::CheckpointMethod::kUniform, 1};
    SCOPED_TRACE(static_cast<int>(gran));
    Batch batch = make_batch(2, c.seq_length, c.vocab_size, 2);
    const Trace g = train(gpu_, c, batch, 2);
    const Trace r = train(cpu_, c, batch, 2);
    compare(g, r, 1e-2, 5e-2, -1.0);
  }
}

TEST_F(GptParity, TrainingStepFp16MatchesCpu) {
  const GptConfig c = small_config(model::Precision::kFp16);
  Batch batch = make_batch(1, c.seq_length, c.vocab_size, 3);
  const Trace g = train(gpu_, c, batch, 2);
  const Trace r = train(cpu_, c, batch, 2);
  compare(g, r, 5e-3, 2e-2, -1.0);
}

TEST_F(GptParity, AttentionHead128AndOddSequenceLength) {
  GptConfig c = small_config(model::Precision::kBf16);
  c.num_attention_heads = 2;  // head size 128
  c.seq_length = 200;         // tiles not filled
  Batch batch = make_batch(2, c.seq_length, c.vocab_size, 4);
  const Trace g = train(gpu_, c, batch, 1);
  const Trace r = train(cpu_, c, batch, 1);
  compare(g, r, 1e-2, 5e-2, -1.0);
}

TEST_F(GptParity, LossCurve126mLarge) {
  // gpt3/126m: 12 layers, hidden 768, 12 heads, the GPT-2 vocabulary; sequence 512 keeps the CPU
  // reference to a minute. One batch repeated, so the loss falls fast and the curves are comparable.
  GptConfig c;
  c.vocab_size = 50257;
  c.seq_length = 512;
  c.num_layers = 12;
  c.hidden_size = 768;
  c.num_attention_heads = 12;
  c.init_method_std = 0.023f;
  c.precision = model::Precision::kBf16;
  Batch batch = make_batch(2, c.seq_length, c.vocab_size, 5);
  const int steps = 6;
  const Trace g = train(gpu_, c, batch, steps);
  const Trace r = train(cpu_, c, batch, steps);
  for (int s = 0; s < steps; ++s) {
    std::printf("step %d: loss gpu %.5f cpu %.5f\n", s, g.losses[s], r.losses[s]);
    EXPECT_NEAR(g.losses[s], r.losses[s], 2e-2 * std::max(1.0f, r.losses[s] / 10.0f)) << "step " << s;
  }
  EXPECT_LT(g.losses.back(), 0.9f * g.losses.front()) << "the GPU run does not learn";
  EXPECT_LT(r.losses.back(), 0.9f * r.losses.front()) << "the CPU run does not learn";
}

}  // namespace
}  // namespace bignlp::parity
