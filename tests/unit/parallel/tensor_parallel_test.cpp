// Tensor- and sequence-parallel layers on thread ranks against the same computation on one rank:
// a column -> GeLU -> row MLP (forward output, input gradient, every weight/bias gradient shard),
// the vocab-parallel embedding and cross entropy, and the mappings themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/column_parallel_linear.h"
#include "bignlp/parallel/mappings.h"
#include "bignlp/parallel/row_parallel_linear.h"
#include "bignlp/parallel/vocab_parallel_cross_entropy.h"
#include "bignlp/parallel/vocab_parallel_embedding.h"

namespace bignlp::parallel {
namespace {

using namespace std::chrono_literals;
using Vec = std::vector<float>;

Vec random_vec(std::size_t n, unsigned seed, float scale = 1.0f) {
  Vec v(n);
  std::uint64_t s = seed * 2654435761u + 12345;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = scale * (static_cast<float>((s >> 33) % 20001) / 10000.0f - 1.0f);
  }
  return v;
}

TensorView view(Vec& v, Shape s) { return TensorView(v.data(), DType::kF32, s); }

// Rows [r0, r0+nr) and columns [c0, c0+nc) of a row-major (rows, cols) matrix.
Vec block(const Vec& m, std::int64_t cols, std::int64_t r0, std::int64_t nr, std::int64_t c0, std::int64_t nc) {
  Vec out;
  for (std::int64_t r = r0; r < r0 + nr; ++r) {
    for (std::int64_t c = c0; c < c0 + nc; ++c) out.push_back(m[static_cast<std::size_t>(r * cols + c)]);
  }
  return out;
}

void expect_close(const Vec& a, const Vec& b, float tol, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << what << " at " << i;
  }
}

struct Mlp {
  std::int64_t n = 8, c = 6, f = 8;  // rows, hidden, ffn
  Vec x, w1, b1, w2, b2, g;          // g: upstream gradient of y
};

struct MlpResult {
  Vec y, dx, dw1, db1, dw2, db2;
};

// y = gelu(x W1^T + b1) W2^T + b2 on one rank, and all gradients for dL/dy = g.
MlpResult run_serial(Mlp& m) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  MlpResult r;
  Vec h(static_cast<std::size_t>(m.n * m.f)), a(h.size());
  r.y.assign(static_cast<std::size_t>(m.n * m.c), 0);
  ops::gemm(ctx, view(m.x, {m.n, m.c}), view(m.w1, {m.f, m.c}), view(h, {m.n, m.f}), {false, true}, view(m.b1, {m.f}));
  ops::gelu_forward(ctx, view(h, {m.n, m.f}), view(a, {m.n, m.f}), ops::GeluApprox::kTanh);
  ops::gemm(ctx, view(a, {m.n, m.f}), view(m.w2, {m.c, m.f}), view(r.y, {m.n, m.c}), {false, true}, view(m.b2, {m.c}));
  r.dw1.assign(m.w1.size(), 0);
  r.db1.assign(m.b1.size(), 0);
  r.dw2.assign(m.w2.size(), 0);
  r.db2.assign(m.b2.size(), 0);
  r.dx.assign(m.x.size(), 0);
  Vec da(a.size());
  ops::gemm(ctx, view(m.g, {m.n, m.c}), view(a, {m.n, m.f}), view(r.dw2, {m.c, m.f}), {true, false, 1, 1});
  ops::bias_backward(ctx, view(m.g, {m.n, m.c}), view(r.db2, {m.c}));
  ops::gemm(ctx, view(m.g, {m.n, m.c}), view(m.w2, {m.c, m.f}), view(da, {m.n, m.f}), {});
  ops::gelu_backward(ctx, view(h, {m.n, m.f}), view(da, {m.n, m.f}), view(da, {m.n, m.f}), ops::GeluApprox::kTanh);
  ops::gemm(ctx, view(da, {m.n, m.f}), view(m.x, {m.n, m.c}), view(r.dw1, {m.f, m.c}), {true, false, 1, 1});
  ops::bias_backward(ctx, view(da, {m.n, m.f}), view(r.db1, {m.f}));
  ops::gemm(ctx, view(da, {m.n, m.f}), view(m.w1, {m.f, m.c}), view(r.dx, {m.n, m.c}), {});
  return r;
}

void run_tensor_parallel(int t, bool sp, bool async_allreduce) {
  Mlp m;
  m.x = random_vec(static_cast<std::size_t>(m.n * m.c), 1);
  m.w1 = random_vec(static_cast<std::size_t>(m.f * m.c), 2, 0.5f);
  m.b1 = random_vec(static_cast<std::size_t>(m.f), 3, 0.1f);
  m.w2 = random_vec(static_cast<std::size_t>(m.c * m.f), 4, 0.5f);
  m.b2 = random_vec(static_cast<std::size_t>(m.c), 5, 0.1f);
  m.g = random_vec(static_cast<std::size_t>(m.n * m.c), 6);
  const MlpResult ref = run_serial(m);

  comm::LocalWorld world(t, 20s);
  world.run([&](comm::Communicator& tp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    const int r = tp.rank();
    const std::int64_t fl = m.f / t, nl = sp ? m.n / t : m.n, row0 = sp ? r * nl : 0;
    Vec w1 = block(m.w1, m.c, r * fl, fl, 0, m.c), b1 = block(m.b1, 1, r * fl, fl, 0, 1);
    Vec w2 = block(m.w2, m.f, 0, m.c, r * fl, fl), b2 = m.b2;
    Vec dw1(w1.size(), 0), db1(b1.size(), 0), dw2(w2.size(), 0), db2(b2.size(), 0);
    LinearWeights l1{view(w1, {fl, m.c}), view(b1, {fl}), view(dw1, {fl, m.c}), view(db1, {fl})};
    LinearWeights l2{view(w2, {m.c, fl}), view(b2, {m.c}), view(dw2, {m.c, fl}), view(db2, {m.c})};
    ColumnParallelLinear fc1(&tp, sp, async_allreduce);
    RowParallelLinear fc2(&tp, sp);
    Vec x = block(m.x, m.c, row0, nl, 0, m.c), g = block(m.g, m.c, row0, nl, 0, m.c);
    Vec h(static_cast<std::size_t>(m.n * fl)), a(h.size()), y(static_cast<std::size_t>(nl * m.c));
    fc1.forward(ctx, l1, view(x, {nl, m.c}), view(h, {m.n, fl}));
    ops::gelu_forward(ctx, view(h, {m.n, fl}), view(a, {m.n, fl}), ops::GeluApprox::kTanh);
    fc2.forward(ctx, l2, view(a, {m.n, fl}), view(y, {nl, m.c}));
    expect_close(y, block(ref.y, m.c, row0, nl, 0, m.c), 1e-5f, "y");
    Vec da(a.size()), dx(x.size());
    fc2.backward(ctx, l2, view(a, {m.n, fl}), view(g, {nl, m.c}), view(da, {m.n, fl}));
    ops::gelu_backward(ctx, view(h, {m.n, fl}), view(da, {m.n, fl}), view(da, {m.n, fl}), ops::GeluApprox::kTanh);
    fc1.backward(ctx, l1, view(x, {nl, m.c}), view(da, {m.n, fl}), view(dx, {nl, m.c}));
    expect_close(dx, block(ref.dx, m.c, row0, nl, 0, m.c), 1e-5f, "dx");
    expect_close(dw1, block(ref.dw1, m.c, r * fl, fl, 0, m.c), 1e-5f, "dw1");
    expect_close(db1, block(ref.db1, 1, r * fl, fl, 0, 1), 1e-5f, "db1");
    expect_close(dw2, block(ref.dw2, m.f, 0, m.c, r * fl, fl), 1e-5f, "dw2");
    expect_close(db2, ref.db2, 1e-5f, "db2");
  });
}

TEST(TensorParallel, MlpTp2MatchesOneRank) { run_tensor_parallel(2, false, false); }
TEST(TensorParallel, MlpTp4AsyncAllReduceMatchesOneRank) { run_tensor_parallel(4, false, true); }
TEST(TensorParallel, MlpTp2SequenceParallelMatchesOneRank) { run_tensor_parallel(2, true, false); }
TEST(TensorParallel, MlpTp4SequenceParallelMatchesOneRank) { run_tensor_parallel(4, true, true); }

TEST(TensorParallel, OneRankLayersAreThePlainLinear) {
  Mlp m;
  m.x = random_vec(48, 1);
  m.w1 = random_vec(64, 2);
  m.b1 = random_vec(8, 3);
  ops::OpContext ctx = ops::OpContext::cpu();
  Vec y1(64), y2(64);
  ops::gemm(ctx, view(m.x, {8, 6}), view(m.w1, {8, 6}), view(y1, {8, 8}), {false, true}, view(m.b1, {8}));
  Vec dw(64), db(8);
  ColumnParallelLinear(nullptr, false, true)
      .forward(ctx, LinearWeights{view(m.w1, {8, 6}), view(m.b1, {8}), view(dw, {8, 6}), view(db, {8})}, view(m.x, {8, 6}),
               view(y2, {8, 8}));
  EXPECT_EQ(y1, y2);  // bit-identical
}

TEST(TensorParallel, MappingsRoundTripAlongBothDimensions) {
  comm::LocalWorld world(2, 20s);
  world.run([&](comm::Communicator& tp) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
    Vec full = random_vec(4 * 6, 9);  // (4, 6), the same on both ranks
    Vec cols(4 * 3), back(4 * 6), rows(2 * 6), back_rows(4 * 6);
    scatter_to_tp_region_forward(ctx, tp, view(full, {4, 6}), view(cols, {4, 3}));
    EXPECT_EQ(cols, block(full, 6, 0, 4, 3 * tp.rank(), 3));
    gather_from_tp_region_forward(ctx, tp, view(cols, {4, 3}), view(back, {4, 6}));
    EXPECT_EQ(back, full);
    gather_from_tp_region_backward(ctx, tp, view(full, {4, 6}), view(cols, {4, 3}));
    EXPECT_EQ(cols, block(full, 6, 0, 4, 3 * tp.rank(), 3));
    scatter_to_sp_region_forward(ctx, tp, view(full, {4, 6}), view(rows, {2, 6}));
    EXPECT_EQ(rows, block(full, 6, 2 * tp.rank(), 2, 0, 6));
    scatter_to_sp_region_backward(tp, view(rows, {2, 6}), view(back_rows, {4, 6}));
    EXPECT_EQ(back_rows, full);
    // reduce-scatter of the same full tensor on both ranks: rows of 2 * full.
    reduce_scatter_to_sp_region_forward(tp, view(full, {4, 6}), view(rows, {2, 6}));
    Vec twice = block(full, 6, 2 * tp.rank(), 2, 0, 6);
    for (auto& v : twice) v *= 2;
    EXPECT_EQ(rows, twice);
    Vec odd(3 * 6);
    EXPECT_THROW(scatter_to_sp_region_forward(ctx, tp, view(odd, {3, 6}), view(rows, {2, 6})), RuntimeError);
  });
}

TEST(VocabParallel, EmbeddingAndCrossEntropyMatchOneRank) {
  const std::int64_t v = 16, c = 4, n = 10;
  Vec table = random_vec(static_cast<std::size_t>(v * c), 11);
  std::vector<std::int32_t> ids{0, 3, 15, 7, 8, 8, 12, 1, 9, 4};
  Vec logits = random_vec(static_cast<std::size_t>(n * v), 12, 3.0f);
  std::vector<std::int32_t> targets{1, 15, 8, 0, 7, 9, 3, 12, 4, 11};
  Vec dl = random_vec(static_cast<std::size_t>(n), 13);
  Vec dout = random_vec(static_cast<std::size_t>(n * c), 14);
  ops::OpContext host = ops::OpContext::cpu();
  const auto ids_view = [](std::vector<std::int32_t>& x) {
    return TensorView(x.data(), DType::kI32, Shape{static_cast<std::int64_t>(x.size())});
  };
  Vec ref_out(static_cast<std::size_t>(n * c)), ref_dtable(table.size(), 0), ref_loss(n), ref_lse(n),
      ref_dlogits(logits.size());
  ops::embedding_forward(host, ids_view(ids), view(table, {v, c}), view(ref_out, {n, c}));
  ops::embedding_backward(host, ids_view(ids), view(dout, {n, c}), view(ref_dtable, {v, c}));
  ops::cross_entropy_forward(host, view(logits, {n, v}), ids_view(targets), view(ref_loss, {n}), view(ref_lse, {n}));
  ops::cross_entropy_backward(host, view(logits, {n, v}), ids_view(targets), view(ref_lse, {n}), view(dl, {n}),
                              view(ref_dlogits, {n, v}));

  for (int t : {2, 4}) {
    comm::LocalWorld world(t, 20s);
    world.run([&](comm::Communicator& tp) {
      ops::OpContext ctx = ops::OpContext::cpu();
      VocabParallelEmbedding emb(&tp, v);
      const std::int64_t vl = emb.shard_rows(), v0 = emb.vocab_start();
      ASSERT_EQ(v0, tp.rank() * v / t);
      Vec shard = block(table, c, v0, vl, 0, c), dshard(shard.size(), 0), out(static_cast<std::size_t>(n * c));
      auto local_ids = ids;
      emb.forward(ctx, ids_view(local_ids), view(shard, {vl, c}), view(out, {n, c}));
      EXPECT_EQ(out, ref_out);  // exact: one rank contributes each row
      emb.backward(ctx, ids_view(local_ids), view(dout, {n, c}), view(dshard, {vl, c}));
      EXPECT_EQ(dshard, block(ref_dtable, c, v0, vl, 0, c));

      VocabParallelCrossEntropy ce(&tp, v0);
      Vec lg = block(logits, v, 0, n, v0, vl), loss(n), lse(n), dlg(lg.size());
      auto local_targets = targets;
      ce.forward(ctx, view(lg, {n, vl}), ids_view(local_targets), view(loss, {n}), view(lse, {n}));
      expect_close(loss, ref_loss, 2e-6f, "loss");
      expect_close(lse, ref_lse, 2e-6f, "lse");
      ce.backward(ctx, view(lg, {n, vl}), ids_view(local_targets), view(lse, {n}), view(dl, {n}), view(dlg, {n, vl}));
      expect_close(dlg, block(ref_dlogits, v, 0, n, v0, vl), 2e-6f, "dlogits");
    });
  }
}

}  // namespace
}  // namespace bignlp::parallel
