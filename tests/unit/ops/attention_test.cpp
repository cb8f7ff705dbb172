#include <gtest/gtest.h>

#include "bignlp/ops/philox.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::grads_close;
using testing::HostTensor;
using testing::numeric_grad;
using testing::random_tensor;

// Straightforward reference: explicit (T, T) probability matrix per (b, h), in double.
std::vector<double> naive_attention(const HostTensor& qkv, std::int64_t t, std::int64_t b, int nh,
                                    const AttentionParams& p) {
  const std::int64_t hs = qkv.shape[2] / (3 * nh), row = qkv.shape[2];
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  const int total = p.total_heads ? p.total_heads : nh;
  std::vector<double> out(static_cast<std::size_t>(t * b * nh * hs), 0.0);
  auto at = [&](std::int64_t ti, std::int64_t bi, int h, int part, std::int64_t e) {
    return static_cast<double>(qkv.data[(ti * b + bi) * row + h * 3 * hs + part * hs + e]);
  };
  for (std::int64_t bi = 0; bi < b; ++bi)
    for (int h = 0; h < nh; ++h)
      for (std::int64_t i = 0; i < t; ++i) {
        std::vector<double> s(t, -INFINITY);
        double mx = -INFINITY;
        for (std::int64_t j = 0; j <= (p.causal ? i : t - 1); ++j) {
          double d = 0;
          for (std::int64_t e = 0; e < hs; ++e) d += at(i, bi, h, 0, e) * at(j, bi, h, 1, e);
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (std::int64_t j = 0; j < t; ++j) z += std::exp(s[j] - mx);
        for (std::int64_t j = 0; j < t; ++j) {
          double pr = std::exp(s[j] - mx) / z;
          if (p.dropout.p > 0) {
            const std::uint64_t idx = ((static_cast<std::uint64_t>(bi * total + p.head_offset + h) * t + i) * t + j);
            pr = dropout_keep(p.dropout.seed, p.dropout.offset, idx, p.dropout.p) ? pr / (1.0 - p.dropout.p) : 0.0;
          }
          for (std::int64_t e = 0; e < hs; ++e) out[((i * b + bi) * nh + h) * hs + e] += pr * at(j, bi, h, 2, e);
        }
      }
  return out;
}

class AttentionTest : public ::testing::TestWithParam<float> {};

TEST_P(AttentionTest, ForwardMatchesExplicitSoftmax) {
  std::mt19937 rng(10);
  const std::int64_t t = 6, b = 2, hs = 4;
  const int nh = 3;
  HostTensor qkv = random_tensor(Shape{t, b, 3 * nh * hs}, rng);
  AttentionParams p;
  p.num_heads = nh;
  p.dropout = DropoutParams{GetParam(), 77, 5, 0};
  HostTensor out(Shape{t, b, nh * hs}), lse(Shape{b, nh, t});
  attention_forward(OpContext::cpu(), qkv.view(), out.view(), lse.view(), p);
  const auto expected = naive_attention(qkv, t, b, nh, p);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(out.data[i], expected[i], 1e-5) << i;
  // Row 0 attends only to key 0: lse = scale * q0.k0.
  double d = 0;
  for (int e = 0; e < hs; ++e) d += qkv.data[e] * qkv.data[hs + e];
  EXPECT_NEAR(lse.data[0], d / 2.0, 1e-5);
}

TEST_P(AttentionTest, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(11);
  const std::int64_t t = 5, b = 2, hs = 3;
  const int nh = 2;
  HostTensor qkv = random_tensor(Shape{t, b, 3 * nh * hs}, rng);
  HostTensor r = random_tensor(Shape{t, b, nh * hs}, rng);
  AttentionParams p;
  p.num_heads = nh;
  p.dropout = DropoutParams{GetParam(), 3, 9, 0};
  p.head_offset = 2;
  p.total_heads = 6;
  const OpContext ctx = OpContext::cpu();
  auto loss = [&] {
    HostTensor out(Shape{t, b, nh * hs}), lse(Shape{b, nh, t});
    attention_forward(ctx, qkv.view(), out.view(), lse.view(), p);
    return testing::dot(out.data, r.data);
  };
  HostTensor out(Shape{t, b, nh * hs}), lse(Shape{b, nh, t}), dqkv(qkv.shape, 123.0f);
  attention_forward(ctx, qkv.view(), out.view(), lse.view(), p);
  attention_backward(ctx, qkv.view(), out.view(), lse.view(), r.view(), dqkv.view(), p);
  EXPECT_TRUE(grads_close(dqkv.data, numeric_grad(qkv, loss, 1e-3f)));
}

INSTANTIATE_TEST_SUITE_P(Dropout, AttentionTest, ::testing::Values(0.0f, 0.3f));

TEST(AttentionTest2, ThreadCountDoesNotChangeResultsAndHeadShardsMatch) {
  std::mt19937 rng(12);
  const std::int64_t t = 16, b = 3, hs = 8;
  const int nh = 4;
  HostTensor qkv = random_tensor(Shape{t, b, 3 * nh * hs}, rng), dout = random_tensor(Shape{t, b, nh * hs}, rng);
  AttentionParams p;
  p.num_heads = nh;
  p.dropout = DropoutParams{0.1f, 1, 2, 0};
  HostTensor o1(Shape{t, b, nh * hs}), o2(o1.shape), l1(Shape{b, nh, t}), l2(l1.shape), g1(qkv.shape), g2(qkv.shape);
  attention_forward(OpContext::cpu(1), qkv.view(), o1.view(), l1.view(), p);
  attention_forward(OpContext::cpu(2), qkv.view(), o2.view(), l2.view(), p);
  attention_backward(OpContext::cpu(1), qkv.view(), o1.view(), l1.view(), dout.view(), g1.view(), p);
  attention_backward(OpContext::cpu(2), qkv.view(), o2.view(), l2.view(), dout.view(), g2.view(), p);
  EXPECT_EQ(o1.data, o2.data);
  EXPECT_EQ(g1.data, g2.data);
  // Heads 2..3 computed alone (as TP rank 1 of 2 would) give the same output columns.
  HostTensor shard(Shape{t, b, 3 * 2 * hs});
  for (std::int64_t r = 0; r < t * b; ++r)
    for (std::int64_t e = 0; e < 6 * hs; ++e) shard.data[r * 6 * hs + e] = qkv.data[r * 3 * nh * hs + 6 * hs + e];
  AttentionParams ps = p;
  ps.num_heads = 2;
  ps.head_offset = 2;
  ps.total_heads = 4;
  HostTensor os(Shape{t, b, 2 * hs}), ls(Shape{b, 2, t});
  attention_forward(OpContext::cpu(), shard.view(), os.view(), ls.view(), ps);
  for (std::int64_t r = 0; r < t * b; ++r)
    for (std::int64_t e = 0; e < 2 * hs; ++e) ASSERT_EQ(os.data[r * 2 * hs + e], o1.data[r * nh * hs + 2 * hs + e]);
}

}  // namespace
}  // namespace bignlp::ops
