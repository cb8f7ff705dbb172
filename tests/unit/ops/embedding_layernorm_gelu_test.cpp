#include <gtest/gtest.h>

#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::grads_close;
using testing::HostTensor;
using testing::numeric_grad;
using testing::random_tensor;

TEST(EmbeddingTest, LookupShardAndAccumulate) {
  const OpContext ctx = OpContext::cpu();
  HostTensor table(Shape{4, 2});
  table.data = {0, 1, 10, 11, 20, 21, 30, 31};
  std::vector<std::int32_t> ids{2, 0, 5, 3};
  HostTensor out(Shape{4, 2});
  // A shard holding vocab rows [2, 6): ids 0 fall outside and give zero rows.
  embedding_forward(ctx, testing::ids_view(ids), table.view(), out.view(), /*vocab_start=*/2);
  EXPECT_EQ(out.data, (std::vector<float>{0, 1, 0, 0, 30, 31, 10, 11}));
  HostTensor pos(Shape{4, 2}, 0.5f);
  std::vector<std::int32_t> pos_ids{0, 1, 2, 3};
  embedding_forward(ctx, testing::ids_view(pos_ids), pos.view(), out.view(), 0, /*accumulate=*/true);
  EXPECT_EQ(out.data, (std::vector<float>{0.5, 1.5, 0.5, 0.5, 30.5, 31.5, 10.5, 11.5}));
}

TEST(EmbeddingTest, BackwardScatterAddsRepeatedIds) {
  const OpContext ctx = OpContext::cpu();
  std::vector<std::int32_t> ids{1, 3, 1, 0};
  HostTensor dout(Shape{4, 3});
  for (int i = 0; i < 12; ++i) dout[i] = static_cast<float>(i);
  HostTensor dtable(Shape{4, 3}, 1.0f);
  embedding_backward(ctx, testing::ids_view(ids), dout.view(), dtable.view());
  EXPECT_EQ(dtable.data, (std::vector<float>{10, 11, 12, 7, 9, 11, 1, 1, 1, 4, 5, 6}));
}

TEST(LayerNormTest, ForwardHandComputed) {
  const OpContext ctx = OpContext::cpu();
  HostTensor x(Shape{1, 4});
  x.data = {1, 2, 3, 4};
  HostTensor w(Shape{4}, 2.0f), b(Shape{4}, 1.0f), y(Shape{1, 4}), mean(Shape{1}), rstd(Shape{1});
  layernorm_forward(ctx, x.view(), w.view(), b.view(), y.view(), mean.view(), rstd.view(), 1e-5f);
  const double s = 1.0 / std::sqrt(1.25 + 1e-5);
  EXPECT_FLOAT_EQ(mean[0], 2.5f);
  EXPECT_NEAR(rstd[0], s, 1e-6);
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(y[j], (j + 1 - 2.5) * s * 2 + 1, 1e-5);
}

TEST(LayerNormTest, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(7);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 3, c = 8;
  HostTensor x = random_tensor(Shape{n, c}, rng), w = random_tensor(Shape{c}, rng), b = random_tensor(Shape{c}, rng);
  HostTensor r = random_tensor(Shape{n, c}, rng);  // loss = sum(y * r)
  auto loss = [&] {
    HostTensor y(Shape{n, c});
    layernorm_forward(ctx, x.view(), w.view(), b.view(), y.view(), {}, {}, 1e-5f);
    return testing::dot(y.data, r.data);
  };
  HostTensor y(Shape{n, c}), mean(Shape{n}), rstd(Shape{n});
  layernorm_forward(ctx, x.view(), w.view(), b.view(), y.view(), mean.view(), rstd.view(), 1e-5f);
  HostTensor dx(Shape{n, c}, 100.0f), dw(Shape{c}), db(Shape{c});
  layernorm_backward(ctx, x.view(), w.view(), mean.view(), rstd.view(), r.view(), dx.view(), dw.view(), db.view(),
                     /*accumulate_dx=*/true);
  for (auto& v : dx.data) v -= 100.0f;
  EXPECT_TRUE(grads_close(dx.data, numeric_grad(x, loss)));
  EXPECT_TRUE(grads_close(dw.data, numeric_grad(w, loss)));
  EXPECT_TRUE(grads_close(db.data, numeric_grad(b, loss)));
}

// An empty bias is a LayerNorm without bias: the same results as a zero bias, bit for bit, and an
// empty dbias skips its column sums without changing dx or dweight.
TEST(LayerNormTest, EmptyBiasEqualsZeroBias) {
  std::mt19937 rng(9);
  const OpContext ctx = OpContext::cpu();
  const std::int64_t n = 4, c = 16;
  HostTensor x = random_tensor(Shape{n, c}, rng), w = random_tensor(Shape{c}, rng), dy = random_tensor(Shape{n, c}, rng);
  HostTensor zero(Shape{c}), y0(Shape{n, c}), y1(Shape{n, c}), mean(Shape{n}), rstd(Shape{n});
  layernorm_forward(ctx, x.view(), w.view(), zero.view(), y0.view(), mean.view(), rstd.view(), 1e-5f);
  layernorm_forward(ctx, x.view(), w.view(), {}, y1.view(), mean.view(), rstd.view(), 1e-5f);
  EXPECT_EQ(y1.data, y0.data);
  HostTensor dx0(Shape{n, c}), dx1(Shape{n, c}), dw0(Shape{c}), dw1(Shape{c}), db(Shape{c});
  layernorm_backward(ctx, x.view(), w.view(), mean.view(), rstd.view(), dy.view(), dx0.view(), dw0.view(), db.view());
  layernorm_backward(ctx, x.view(), w.view(), mean.view(), rstd.view(), dy.view(), dx1.view(), dw1.view(), {});
  EXPECT_EQ(dx1.data, dx0.data);
  EXPECT_EQ(dw1.data, dw0.data);
}

TEST(GeluTest, KnownValuesAndDerivatives) {
  const OpContext ctx = OpContext::cpu();
  HostTensor x(Shape{3});
  x.data = {1.0f, -0.5f, 2.0f};
  HostTensor y(Shape{3});
  gelu_forward(ctx, x.view(), y.view(), GeluApprox::kErf);
  EXPECT_NEAR(y[0], 0.8413447460685429, 1e-6);
  EXPECT_NEAR(y[1], -0.15426876936299347, 1e-6);
  gelu_forward(ctx, x.view(), y.view(), GeluApprox::kTanh);
  EXPECT_NEAR(y[0], 0.8411919906082768, 1e-6);
  EXPECT_NEAR(y[2], 1.9545976940871754, 1e-6);
  std::mt19937 rng(8);
  for (GeluApprox approx : {GeluApprox::kTanh, GeluApprox::kErf}) {
    HostTensor in = random_tensor(Shape{16}, rng, 2.0f), r = random_tensor(Shape{16}, rng), dx(Shape{16});
    auto loss = [&] {
      HostTensor out(Shape{16});
      gelu_forward(ctx, in.view(), out.view(), approx);
      return testing::dot(out.data, r.data);
    };
    gelu_backward(ctx, in.view(), r.view(), dx.view(), approx);
    EXPECT_TRUE(grads_close(dx.data, numeric_grad(in, loss, 1e-3f)));
  }
}

}  // namespace
}  // namespace bignlp::ops
