#include <gtest/gtest.h>

#include "bignlp/ops/philox.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::HostTensor;
using testing::random_tensor;

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(PhiloxTest, KnownAnswers) {
  Philox4x32 r = philox4x32_10(Philox4x32{{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
  r = philox4x32_10(Philox4x32{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(r.v[0], 0x408f276du);
  EXPECT_EQ(r.v[1], 0x41c83b0eu);
  EXPECT_EQ(r.v[2], 0xa20bc7c6u);
  EXPECT_EQ(r.v[3], 0x6d5451fdu);
  r = philox4x32_10(Philox4x32{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(r.v[0], 0xd16cfe09u);
  EXPECT_EQ(r.v[1], 0x94fdccebu);
  EXPECT_EQ(r.v[2], 0x5001e420u);
  EXPECT_EQ(r.v[3], 0x24126ea1u);
}

TEST(PhiloxTest, UniformIsUniformAndStreamsDiffer) {
  double sum = 0.0;
  int same = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = philox_uniform(1234, 7, static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    same += u == philox_uniform(1234, 8, static_cast<std::uint64_t>(i));
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  EXPECT_LT(same, 10);
}

TEST(DropoutTest, MaskRateScalingAndBackwardAgree) {
  std::mt19937 rng(4);
  const std::int64_t n = 20000;
  HostTensor x = random_tensor(Shape{n}, rng), y(Shape{n}), res = random_tensor(Shape{n}, rng);
  const DropoutParams p{0.25f, 42, 3, 0};
  dropout_forward(OpContext::cpu(), x.view(), y.view(), p, res.view());
  int kept = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_keep(42, 3, static_cast<std::uint64_t>(i), 0.25f);
    kept += keep;
    ASSERT_FLOAT_EQ(y[i], res[i] + (keep ? x[i] * (1.0f / 0.75f) : 0.0f));
  }
  EXPECT_NEAR(static_cast<double>(kept) / n, 0.75, 0.01);
  // Backward: the same mask scales the gradient.
  HostTensor g = random_tensor(Shape{n}, rng), dx(Shape{n}, 1.0f);
  dropout_backward(OpContext::cpu(), g.view(), dx.view(), p, /*accumulate=*/true);
  for (std::int64_t i = 0; i < n; ++i)
    ASSERT_FLOAT_EQ(dx[i], 1.0f + (dropout_keep(42, 3, static_cast<std::uint64_t>(i), 0.25f) ? g[i] * (1.0f / 0.75f) : 0.0f));
}

TEST(DropoutTest, ShardsAndThreadCountsDrawTheSameMask) {
  std::mt19937 rng(5);
  const std::int64_t n = 50000;
  HostTensor x = random_tensor(Shape{n}, rng), full(Shape{n}), one_thread(Shape{n});
  const DropoutParams p{0.5f, 9, 1, 0};
  dropout_forward(OpContext::cpu(2), x.view(), full.view(), p);
  dropout_forward(OpContext::cpu(1), x.view(), one_thread.view(), p);
  EXPECT_EQ(full.data, one_thread.data);
  // The second half as a shard with first_index = n/2 reproduces the full tensor's elements.
  HostTensor half(Shape{n / 2});
  DropoutParams shard = p;
  shard.first_index = n / 2;
  dropout_forward(OpContext::cpu(), x.view().slice(0, n / 2, n / 2), half.view(), shard);
  for (std::int64_t i = 0; i < n / 2; ++i) ASSERT_EQ(half[i], full[n / 2 + i]);
}

TEST(DropoutTest, ZeroProbabilityIsIdentity) {
  std::mt19937 rng(6);
  HostTensor x = random_tensor(Shape{100}, rng), y(Shape{100});
  dropout_forward(OpContext::cpu(), x.view(), y.view(), DropoutParams{});
  EXPECT_EQ(x.data, y.data);
}

}  // namespace
}  // namespace bignlp::ops
