#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::HostTensor;
using testing::random_tensor;

// Reference: c = alpha op(a) op(b) + beta c + bias in double.
std::vector<double> naive(const HostTensor& a, const HostTensor& b, const HostTensor& c, const GemmParams& p,
                          const std::vector<float>& bias) {
  const std::int64_t m = c.shape[0], n = c.shape[1], k = p.trans_a ? a.shape[0] : a.shape[1];
  std::vector<double> out(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (std::int64_t l = 0; l < k; ++l) {
        const double av = p.trans_a ? a.data[l * m + i] : a.data[i * k + l];
        const double bv = p.trans_b ? b.data[j * k + l] : b.data[l * n + j];
        s += av * bv;
      }
      out[i * n + j] = p.alpha * s + p.beta * c.data[i * n + j] + (bias.empty() ? 0.0 : bias[j]);
    }
  return out;
}

TEST(GemmTest, AllTransposesWithBiasAndBeta) {
  std::mt19937 rng(1);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t m = 5, n = 7, k = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      HostTensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, rng);
      HostTensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, rng);
      HostTensor c = random_tensor(Shape{m, n}, rng);
      HostTensor bias = random_tensor(Shape{n}, rng);
      const GemmParams p{ta, tb, 0.5f, 1.0f};
      const auto expected = naive(a, b, c, p, bias.data);
      gemm(ctx, a.view(), b.view(), c.view(), p, bias.view());
      for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(c.data[i], expected[i], 1e-5) << ta << tb << i;
    }
}

TEST(GemmTest, Bf16InputsAccumulateIntoFp32AndBf16Output) {
  std::mt19937 rng(2);
  CpuAllocator alloc;
  const OpContext ctx = OpContext::cpu();
  const std::int64_t m = 4, n = 6, k = 33;
  HostTensor a = random_tensor(Shape{m, k}, rng), b = random_tensor(Shape{n, k}, rng);
  Buffer a16(alloc, DType::kBF16, a.shape), b16(alloc, DType::kBF16, b.shape);
  copy(ctx, a.view(), a16);
  copy(ctx, b.view(), b16);
  // The reference sees the same rounded inputs.
  copy(ctx, a16, a.view());
  copy(ctx, b16, b.view());
  HostTensor acc(Shape{m, n}, 1.0f);  // beta = 1: weight-gradient style accumulation into fp32
  gemm(ctx, a16, b16, acc.view(), GemmParams{false, true, 1.0f, 1.0f});
  HostTensor ones(Shape{m, n}, 1.0f);
  const auto expected = naive(a, b, ones, GemmParams{false, true, 1.0f, 1.0f}, {});
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(acc.data[i], expected[i], 1e-4);

  Buffer c16(alloc, DType::kBF16, Shape{m, n});
  gemm(ctx, a16, b16, c16, GemmParams{false, true});
  HostTensor back(Shape{m, n});
  copy(ctx, c16, back.view());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const float rounded = float_from_bf16(bf16_from_float(static_cast<float>(expected[i] - 1.0)));
    EXPECT_NEAR(back.data[i], rounded, std::abs(rounded) * 1e-2 + 1e-6);
  }
}

TEST(GemmTest, SubViewsWithLeadingStride) {
  std::mt19937 rng(3);
  const OpContext ctx = OpContext::cpu();
  HostTensor big = random_tensor(Shape{4, 10}, rng);
  const TensorView a = big.view().slice(1, 2, 3);  // (4, 3), leading stride 10
  HostTensor b = random_tensor(Shape{3, 2}, rng);
  HostTensor c(Shape{4, 2});
  gemm(ctx, a, b.view(), c.view(), GemmParams{});
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j) {
      double s = 0;
      for (int l = 0; l < 3; ++l) s += big.data[i * 10 + 2 + l] * b.data[l * 2 + j];
      EXPECT_NEAR(c.data[i * 2 + j], s, 1e-5);
    }
}

TEST(GemmTest, ShapeMismatchIsAClearError) {
  const OpContext ctx = OpContext::cpu();
  HostTensor a(Shape{2, 3}), b(Shape{4, 2}), c(Shape{2, 2});
  try {
    gemm(ctx, a.view(), b.view(), c.view(), GemmParams{});
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("inner dimensions differ"), std::string::npos) << e.what();
  }
}

TEST(GemmTest, BiasBackwardSumsRowsAndAccumulates) {
  const OpContext ctx = OpContext::cpu();
  HostTensor dy(Shape{3, 2});
  dy.data = {1, 2, 3, 4, 5, 6};
  HostTensor db(Shape{2}, 10.0f);
  bias_backward(ctx, dy.view(), db.view());
  EXPECT_EQ(db.data, (std::vector<float>{19, 22}));
}

}  // namespace
}  // namespace bignlp::ops
