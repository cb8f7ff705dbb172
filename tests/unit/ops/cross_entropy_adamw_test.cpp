#include <gtest/gtest.h>

#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::grads_close;
using testing::HostTensor;
using testing::numeric_grad;
using testing::random_tensor;

TEST(CrossEntropyTest, ForwardHandComputed) {
  HostTensor logits(Shape{2, 3});
  logits.data = {0, 0, 0, 1, 2, 3};
  std::vector<std::int32_t> targets{1, 2};
  HostTensor losses(Shape{2}), lse(Shape{2});
  cross_entropy_forward(OpContext::cpu(), logits.view(), testing::ids_view(targets), losses.view(), lse.view());
  EXPECT_NEAR(losses[0], std::log(3.0), 1e-6);
  const double l1 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(lse[1], l1, 1e-6);
  EXPECT_NEAR(losses[1], l1 - 3.0, 1e-6);
}

TEST(CrossEntropyTest, BackwardMatchesFiniteDifferencesInPlace) {
  std::mt19937 rng(13);
  const std::int64_t n = 4, v = 7;
  HostTensor logits = random_tensor(Shape{n, v}, rng), w = random_tensor(Shape{n}, rng);
  std::vector<std::int32_t> targets = testing::random_ids(n, v, rng);
  const OpContext ctx = OpContext::cpu();
  auto loss = [&] {
    HostTensor losses(Shape{n}), lse(Shape{n});
    cross_entropy_forward(ctx, logits.view(), testing::ids_view(targets), losses.view(), lse.view());
    return testing::dot(losses.data, w.data);
  };
  const auto numeric = numeric_grad(logits, loss, 1e-3f);
  HostTensor losses(Shape{n}), lse(Shape{n});
  cross_entropy_forward(ctx, logits.view(), testing::ids_view(targets), losses.view(), lse.view());
  cross_entropy_backward(ctx, logits.view(), testing::ids_view(targets), lse.view(), w.view(), logits.view());
  EXPECT_TRUE(grads_close(logits.data, numeric));
}

TEST(CrossEntropyTest, VocabShardsCombineToTheFullLoss) {
  std::mt19937 rng(14);
  const std::int64_t n = 5, v = 8;
  HostTensor logits = random_tensor(Shape{n, v}, rng);
  std::vector<std::int32_t> targets = testing::random_ids(n, v, rng);
  const OpContext ctx = OpContext::cpu();
  HostTensor full(Shape{n}), full_lse(Shape{n});
  cross_entropy_forward(ctx, logits.view(), testing::ids_view(targets), full.view(), full_lse.view());
  HostTensor l0(Shape{n}), s0(Shape{n}), l1(Shape{n}), s1(Shape{n});
  cross_entropy_forward(ctx, logits.view().slice(1, 0, 4), testing::ids_view(targets), l0.view(), s0.view(), 0);
  cross_entropy_forward(ctx, logits.view().slice(1, 4, 4), testing::ids_view(targets), l1.view(), s1.view(), 4);
  for (std::int64_t i = 0; i < n; ++i) {
    const double lse = std::log(std::exp(s0[i]) + std::exp(s1[i]));
    const double target_logit = (s0[i] - l0[i]) + (s1[i] - l1[i]);
    EXPECT_NEAR(lse, full_lse[i], 1e-5);
    EXPECT_NEAR(lse - target_logit, full[i], 1e-5);
  }
}

TEST(ArgmaxTest, LowestIndexWinsTiesAndColumnSlicesWork) {
  HostTensor x(Shape{2, 4});
  x.data = {1, 5, 5, 0, 9, 2, 3, 8};
  std::vector<std::int32_t> out(2);
  argmax(OpContext::cpu(), x.view(), testing::ids_view(out));
  EXPECT_EQ(out, (std::vector<std::int32_t>{1, 0}));
  argmax(OpContext::cpu(), x.view().slice(1, 1, 3), testing::ids_view(out));
  EXPECT_EQ(out, (std::vector<std::int32_t>{0, 2}));
}

TEST(AdamWTest, TwoStepsMatchTheFormula) {
  const OpContext ctx = OpContext::cpu();
  HostTensor p(Shape{2}), g(Shape{2}), m(Shape{2}), v(Shape{2});
  p.data = {1.0f, -2.0f};
  CpuAllocator alloc;
  Buffer p16(alloc, DType::kBF16, Shape{2});
  AdamWParams a;
  a.lr = 0.1f;
  a.beta1 = 0.9f;
  a.beta2 = 0.99f;
  a.eps = 1e-8f;
  a.weight_decay = 0.5f;
  a.grad_scale = 0.5f;
  double pd[2] = {1.0, -2.0}, md[2] = {0, 0}, vd[2] = {0, 0};
  const double gs[2][2] = {{0.4, -1.0}, {2.0, 0.2}};
  for (int step = 1; step <= 2; ++step) {
    g.data = {static_cast<float>(gs[step - 1][0]), static_cast<float>(gs[step - 1][1])};
    a.step = step;
    adamw_step(ctx, p.view(), g.view(), m.view(), v.view(), a, p16);
    for (int i = 0; i < 2; ++i) {
      const double gi = gs[step - 1][i] * 0.5;
      md[i] = 0.9 * md[i] + 0.1 * gi;
      vd[i] = 0.99 * vd[i] + 0.01 * gi * gi;
      const double mh = md[i] / (1 - std::pow(0.9, step)), vh = vd[i] / (1 - std::pow(0.99, step));
      pd[i] -= 0.1 * (mh / (std::sqrt(vh) + 1e-8) + 0.5 * pd[i]);
    }
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(p[i], pd[i], 1e-5);
    EXPECT_EQ(p16.data<BFloat16>()[i].bits, bf16_from_float(p[i]).bits);
  }
  // Coupled L2 (torch Adam): the decay enters the moments instead.
  HostTensor p2(Shape{1}, 1.0f), g2(Shape{1}, 0.0f), m2(Shape{1}), v2(Shape{1});
  AdamWParams l2;
  l2.lr = 0.1f;
  l2.weight_decay = 1.0f;
  l2.decoupled_weight_decay = false;
  adamw_step(ctx, p2.view(), g2.view(), m2.view(), v2.view(), l2);
  EXPECT_NEAR(m2[0], 0.1, 1e-6);       // (1 - beta1) * wd * p
  EXPECT_NEAR(p2[0], 1.0 - 0.1, 1e-5);  // first step moves by lr * sign
}

TEST(ElementwiseTest, FillCopyAddScaleSumSquares) {
  const OpContext ctx = OpContext::cpu();
  CpuAllocator alloc;
  HostTensor a(Shape{2, 3});
  a.data = {1, 2, 3, 4, 5, 6};
  // Strided copy (a transpose) with conversion to fp16 and back.
  Buffer t16(alloc, DType::kF16, Shape{3, 2});
  copy(ctx, a.view().transpose(0, 1), t16);
  HostTensor back(Shape{3, 2});
  copy(ctx, t16, back.view());
  EXPECT_EQ(back.data, (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // Integer conversions.
  std::vector<std::uint16_t> u16{7, 65535};
  std::vector<std::int32_t> i32(2);
  copy(ctx, TensorView(u16.data(), DType::kU16, Shape{2}), testing::ids_view(i32));
  EXPECT_EQ(i32, (std::vector<std::int32_t>{7, 65535}));
  add(ctx, a.view(), a.view(), a.view());
  EXPECT_EQ(a.data, (std::vector<float>{2, 4, 6, 8, 10, 12}));
  scale(ctx, a.view(), 0.5f);
  EXPECT_EQ(a.data, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  HostTensor s(Shape{1}, 10.0f);
  sum_squares(ctx, a.view(), s.view(), /*accumulate=*/true);
  EXPECT_FLOAT_EQ(s[0], 101.0f);
  fill(ctx, a.view(), -1.5);
  EXPECT_EQ(a.data, std::vector<float>(6, -1.5f));
  HostTensor big(Shape{100000}, 1.0f);
  sum_squares(OpContext::cpu(1), big.view(), s.view());
  EXPECT_FLOAT_EQ(s[0], 100000.0f);
}

}  // namespace
}  // namespace bignlp::ops
