// CPU references of the fused and multi-tensor ops: each must equal the composition of the plain
// ops it replaces (up to the documented rounding), and its gradient must match finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "bignlp/tensor/buffer.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::HostTensor;
using testing::random_tensor;

TEST(GemmBiasGeluTest, EqualsGemmThenGeluAndKeepsThePreActivation) {
  std::mt19937 rng(21);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t m = 6, n = 10, k = 5;
  for (bool tb : {false, true}) {
    HostTensor a = random_tensor(Shape{m, k}, rng), b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, rng);
    HostTensor bias = random_tensor(Shape{n}, rng);
    HostTensor c(Shape{m, n}), pre(Shape{m, n}), ref_pre(Shape{m, n}), ref(Shape{m, n});
    const GemmParams p{false, tb};
    gemm_bias_gelu(ctx, a.view(), b.view(), c.view(), pre.view(), p, bias.view());
    gemm(ctx, a.view(), b.view(), ref_pre.view(), p, bias.view());
    gelu_forward(ctx, ref_pre.view(), ref.view(), GeluApprox::kTanh);
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      EXPECT_NEAR(pre[i], ref_pre[i], 1e-5f);
      EXPECT_NEAR(c[i], ref[i], 1e-5f);
    }
  }
}

TEST(GemmBiasGeluTest, Bf16RoundsPreAndOutputFromTheSameFp32Value) {
  std::mt19937 rng(22);
  const OpContext ctx = OpContext::cpu();
  CpuAllocator alloc;
  const std::int64_t m = 4, n = 8, k = 16;
  HostTensor a32 = random_tensor(Shape{m, k}, rng), b32 = random_tensor(Shape{n, k}, rng);
  Buffer a(alloc, DType::kBF16, Shape{m, k}), b(alloc, DType::kBF16, Shape{n, k});
  Buffer c(alloc, DType::kBF16, Shape{m, n}), pre(alloc, DType::kBF16, Shape{m, n});
  copy(ctx, a32.view(), a);
  copy(ctx, b32.view(), b);
  gemm_bias_gelu(ctx, a, b, c, pre, GemmParams{false, true});
  HostTensor v(Shape{m, n});
  gemm(ctx, a, b, v.view(), GemmParams{false, true});  // the fp32 product of the same bf16 inputs
  for (std::int64_t i = 0; i < m * n; ++i) {
    const float x = v[static_cast<std::size_t>(i)];
    EXPECT_EQ(pre.data<BFloat16>()[i].bits, bf16_from_float(x).bits);
    const float g = 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    EXPECT_EQ(c.data<BFloat16>()[i].bits, bf16_from_float(g).bits);
  }
}

TEST(GemmDGeluTest, EqualsGemmThenGeluBackwardThenBiasBackward) {
  std::mt19937 rng(23);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t m = 7, n = 9, k = 4;
  HostTensor dy = random_tensor(Shape{m, k}, rng), w = random_tensor(Shape{k, n}, rng);
  HostTensor pre = random_tensor(Shape{m, n}, rng);
  HostTensor c(Shape{m, n}), ref(Shape{m, n});
  HostTensor dbias(Shape{n}, 0.5f), ref_dbias(Shape{n}, 0.5f);
  gemm_dgelu(ctx, dy.view(), w.view(), c.view(), pre.view(), GemmParams{}, dbias.view());
  gemm(ctx, dy.view(), w.view(), ref.view(), GemmParams{});
  gelu_backward(ctx, pre.view(), ref.view(), ref.view(), GeluApprox::kTanh);
  bias_backward(ctx, ref.view(), ref_dbias.view());
  for (std::size_t i = 0; i < c.data.size(); ++i) EXPECT_NEAR(c[i], ref[i], 1e-5f);
  for (std::int64_t j = 0; j < n; ++j) EXPECT_NEAR(dbias[j], ref_dbias[j], 1e-4f) << "dbias accumulates onto 0.5";
}

TEST(GemmDGeluTest, IsTheGradientOfGemmBiasGelu) {
  // loss = sum(w_out * gelu(x W^T + b)); dL/dx via gemm_dgelu then dx = dpre W; dL/db = dbias.
  std::mt19937 rng(24);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t m = 3, n = 5, k = 4;
  HostTensor x = random_tensor(Shape{m, k}, rng), w = random_tensor(Shape{n, k}, rng), b = random_tensor(Shape{n}, rng);
  HostTensor wout = random_tensor(Shape{m, n}, rng);
  auto loss = [&] {
    HostTensor c(Shape{m, n}), pre(Shape{m, n});
    gemm_bias_gelu(ctx, x.view(), w.view(), c.view(), pre.view(), GemmParams{false, true}, b.view());
    return testing::dot(c.data, wout.data);
  };
  HostTensor c(Shape{m, n}), pre(Shape{m, n});
  gemm_bias_gelu(ctx, x.view(), w.view(), c.view(), pre.view(), GemmParams{false, true}, b.view());
  // gemm_dgelu with a = wout (M, N) and b = identity (N, N) gives dpre = wout * gelu'(pre).
  HostTensor eye(Shape{n, n});
  for (std::int64_t i = 0; i < n; ++i) eye[static_cast<std::size_t>(i * n + i)] = 1.0f;
  HostTensor dpre(Shape{m, n}), db(Shape{n});
  gemm_dgelu(ctx, wout.view(), eye.view(), dpre.view(), pre.view(), GemmParams{}, db.view());
  HostTensor dx(Shape{m, k});
  gemm(ctx, dpre.view(), w.view(), dx.view(), GemmParams{});
  EXPECT_TRUE(testing::grads_close(dx.data, testing::numeric_grad(x, loss, 1e-3f)));
  EXPECT_TRUE(testing::grads_close(db.data, testing::numeric_grad(b, loss, 1e-3f)));
}

TEST(GemmFusedTest, RejectsBetaAndMismatchedShapes) {
  const OpContext ctx = OpContext::cpu();
  HostTensor a(Shape{2, 3}), b(Shape{3, 4}), c(Shape{2, 4}), pre(Shape{2, 4}), bad(Shape{2, 5});
  EXPECT_THROW(gemm_bias_gelu(ctx, a.view(), b.view(), c.view(), pre.view(), GemmParams{false, false, 1.0f, 1.0f}),
               RuntimeError);
  EXPECT_THROW(gemm_bias_gelu(ctx, a.view(), b.view(), c.view(), bad.view(), GemmParams{}), RuntimeError);
  EXPECT_THROW(gemm_dgelu(ctx, a.view(), b.view(), bad.view(), pre.view(), GemmParams{}), RuntimeError);
}

TEST(AdamWMultiTest, EqualsOneAdamWStepPerGroupWithItsOwnDecay) {
  std::mt19937 rng(25);
  const OpContext ctx = OpContext::cpu();
  CpuAllocator alloc;
  const std::vector<std::int64_t> sizes{17, 1, 300};
  const std::vector<float> decays{0.1f, 0.0f, 0.01f};
  AdamWParams p;
  p.lr = 1e-3f;
  p.step = 3;
  p.grad_scale = 0.5f;
  std::vector<HostTensor> param, grad, m, v, param_ref, m_ref, v_ref;
  std::vector<Buffer> model, model_ref;
  std::vector<AdamWTensors> groups;
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    const Shape s{sizes[t]};
    param.push_back(random_tensor(s, rng));
    grad.push_back(random_tensor(s, rng));
    m.push_back(random_tensor(s, rng, 0.1f));
    v.push_back(random_tensor(s, rng, 0.1f));
    for (auto& x : v.back().data) x = std::abs(x);
    param_ref.push_back(param.back());
    m_ref.push_back(m.back());
    v_ref.push_back(v.back());
    model.emplace_back(alloc, DType::kBF16, s);
    model_ref.emplace_back(alloc, DType::kBF16, s);
  }
  for (std::size_t t = 0; t < sizes.size(); ++t)
    groups.push_back(AdamWTensors{param[t].view(), grad[t].view(), m[t].view(), v[t].view(), model[t], decays[t]});
  adamw_step_multi(ctx, groups, p);
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    AdamWParams q = p;
    q.weight_decay = decays[t];
    adamw_step(ctx, param_ref[t].view(), grad[t].view(), m_ref[t].view(), v_ref[t].view(), q, model_ref[t]);
    EXPECT_EQ(param[t].data, param_ref[t].data);
    EXPECT_EQ(m[t].data, m_ref[t].data);
    EXPECT_EQ(v[t].data, v_ref[t].data);
    for (std::int64_t i = 0; i < sizes[t]; ++i)
      EXPECT_EQ(model[t].data<BFloat16>()[i].bits, model_ref[t].data<BFloat16>()[i].bits);
  }
}

TEST(SumSquaresMultiTest, EqualsAccumulatedSumSquares) {
  std::mt19937 rng(26);
  const OpContext ctx = OpContext::cpu();
  std::vector<HostTensor> xs{random_tensor(Shape{5000}, rng), random_tensor(Shape{3}, rng),
                             random_tensor(Shape{9000}, rng)};
  std::vector<TensorView> views;
  for (auto& x : xs) views.push_back(x.view());
  HostTensor out(Shape{1}, 7.0f), ref(Shape{1}, 7.0f);
  sum_squares_multi(ctx, views, out.view(), /*accumulate=*/true);
  double expect = 7.0;
  for (auto& x : xs)
    for (float v : x.data) expect += static_cast<double>(v) * v;
  EXPECT_NEAR(out[0], expect, 1e-3);
  sum_squares_multi(ctx, views, out.view());
  EXPECT_NEAR(out[0], expect - 7.0, 1e-3);
}

}  // namespace
}  // namespace bignlp::ops
