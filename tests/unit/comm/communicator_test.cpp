// CpuCommunicator over the in-process transport: every collective against a direct computation,
// for several group sizes (including tensors smaller than the group) and dtypes; ordering,
// subgroups, batches, and the errors and timeouts a failing rank produces.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <thread>
#include <vector>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/core/error.h"
#include "bignlp/tensor/half.h"

namespace bignlp::comm {
namespace {

using namespace std::chrono_literals;

float value(int rank, std::int64_t i) { return static_cast<float>((rank + 1) * 0.5 + static_cast<double>(i) * 0.25 - 3.0); }

class CollectiveTest : public ::testing::TestWithParam<int> {};

TEST_P(CollectiveTest, AllReduceSumAvgMaxMinFp32) {
  const int n = GetParam();
  for (std::int64_t numel : {1, 3, 7, 64, 1001}) {
    LocalWorld world(n, 20s);
    world.run([&](Communicator& c) {
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
        std::vector<float> x(static_cast<std::size_t>(numel));
        for (std::int64_t i = 0; i < numel; ++i) x[static_cast<std::size_t>(i)] = value(c.rank(), i);
        c.all_reduce(TensorView(x.data(), DType::kF32, Shape{numel}), op);
        for (std::int64_t i = 0; i < numel; ++i) {
          double expect = op == ReduceOp::kMax ? -1e30 : (op == ReduceOp::kMin ? 1e30 : 0.0);
          for (int r = 0; r < n; ++r) {
            const double v = value(r, i);
            if (op == ReduceOp::kMax) expect = std::max(expect, v);
            else if (op == ReduceOp::kMin) expect = std::min(expect, v);
            else expect += v;
          }
          if (op == ReduceOp::kAvg) expect /= n;
          ASSERT_NEAR(x[static_cast<std::size_t>(i)], expect, 1e-5) << "op " << reduce_op_name(op) << " i " << i;
        }
      }
    });
  }
}

TEST_P(CollectiveTest, AllReduceResultIsBitIdenticalOnEveryRank) {
  const int n = GetParam();
  std::vector<std::vector<float>> results(static_cast<std::size_t>(n));
  LocalWorld world(n, 20s);
  world.run([&](Communicator& c) {
    std::vector<float> x(333);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f / static_cast<float>(i + 1 + 7 * c.rank());
    c.all_reduce(TensorView(x.data(), DType::kF32, Shape{333}));
    results[static_cast<std::size_t>(c.rank())] = x;
  });
  for (int r = 1; r < n; ++r) EXPECT_EQ(results[0], results[static_cast<std::size_t>(r)]);
}

TEST_P(CollectiveTest, AllReduceIntegersAndBf16) {
  const int n = GetParam();
  LocalWorld world(n, 20s);
  world.run([&](Communicator& c) {
    std::vector<std::int64_t> a{c.rank(), 10 * c.rank(), -c.rank(), 1};
    c.all_reduce(TensorView(a.data(), DType::kI64, Shape{4}), ReduceOp::kSum);
    const std::int64_t s = static_cast<std::int64_t>(n) * (n - 1) / 2;
    EXPECT_EQ(a, (std::vector<std::int64_t>{s, 10 * s, -s, n}));
    std::vector<std::int32_t> m{c.rank(), -c.rank()};
    c.all_reduce(TensorView(m.data(), DType::kI32, Shape{2}), ReduceOp::kMax);
    EXPECT_EQ(m, (std::vector<std::int32_t>{n - 1, 0}));
    std::vector<BFloat16> b(5, bf16_from_float(static_cast<float>(c.rank() + 1)));
    c.all_reduce(TensorView(b.data(), DType::kBF16, Shape{5}), ReduceOp::kAvg);
    for (auto v : b) EXPECT_FLOAT_EQ(float_from_bf16(v), (n + 1) / 2.0f);
  });
}

TEST_P(CollectiveTest, AllGatherAndReduceScatter) {
  const int n = GetParam();
  LocalWorld world(n, 20s);
  world.run([&](Communicator& c) {
    for (std::int64_t m : {1, 5, 128}) {
      std::vector<float> in(static_cast<std::size_t>(m)), out(static_cast<std::size_t>(m * n), -1.0f);
      for (std::int64_t i = 0; i < m; ++i) in[static_cast<std::size_t>(i)] = value(c.rank(), i);
      c.all_gather(TensorView(in.data(), DType::kF32, Shape{m}), TensorView(out.data(), DType::kF32, Shape{n, m}));
      for (int r = 0; r < n; ++r) {
        for (std::int64_t i = 0; i < m; ++i) ASSERT_EQ(out[static_cast<std::size_t>(r * m + i)], value(r, i));
      }
      // reduce_scatter of (n, m) where element (j, i) on rank r is value(r, j*m + i).
      std::vector<float> full(static_cast<std::size_t>(n * m)), part(static_cast<std::size_t>(m));
      for (std::int64_t k = 0; k < n * m; ++k) full[static_cast<std::size_t>(k)] = value(c.rank(), k);
      c.reduce_scatter(TensorView(full.data(), DType::kF32, Shape{n * m}), TensorView(part.data(), DType::kF32, Shape{m}),
                       ReduceOp::kAvg);
      for (std::int64_t i = 0; i < m; ++i) {
        double expect = 0;
        for (int r = 0; r < n; ++r) expect += value(r, c.rank() * m + i);
        ASSERT_NEAR(part[static_cast<std::size_t>(i)], expect / n, 1e-5);
      }
    }
  });
}

TEST_P(CollectiveTest, BroadcastFromEveryRoot) {
  const int n = GetParam();
  LocalWorld world(n, 20s);
  world.run([&](Communicator& c) {
    for (int root = 0; root < n; ++root) {
      std::vector<std::int32_t> x(9, c.rank() == root ? 100 + root : -1);
      c.broadcast(TensorView(x.data(), DType::kI32, Shape{9}), root);
      for (auto v : x) ASSERT_EQ(v, 100 + root);
    }
    c.barrier();
  });
}

INSTANTIATE_TEST_SUITE_P(GroupSizes, CollectiveTest, ::testing::Values(1, 2, 3, 4, 8));

TEST(LocalCommunicator, SendRecvPairInOrderPerPeer) {
  LocalWorld world(3, 20s);
  world.run([&](Communicator& c) {
    if (c.rank() == 0) {
      std::vector<float> a{1, 2}, b{3, 4}, d{5};
      auto w1 = c.send_async(TensorView(a.data(), DType::kF32, Shape{2}), 1);
      auto w2 = c.send_async(TensorView(b.data(), DType::kF32, Shape{2}), 1);
      c.send(TensorView(d.data(), DType::kF32, Shape{1}), 2);
      w1->wait(5s);
      w2->wait(5s);
    } else if (c.rank() == 1) {
      std::vector<float> x(2), y(2);
      c.recv(TensorView(x.data(), DType::kF32, Shape{2}), 0);
      c.recv(TensorView(y.data(), DType::kF32, Shape{2}), 0);
      EXPECT_EQ(x, (std::vector<float>{1, 2}));
      EXPECT_EQ(y, (std::vector<float>{3, 4}));
    } else {
      std::vector<float> z(1);
      c.recv(TensorView(z.data(), DType::kF32, Shape{1}), 0);
      EXPECT_EQ(z[0], 5.0f);
    }
  });
}

TEST(LocalCommunicator, BatchSendRecvExchangesInBothDirections) {
  LocalWorld world(2, 20s);
  world.run([&](Communicator& c) {
    std::vector<float> out(4, static_cast<float>(c.rank() + 10)), in(4, 0);
    const int peer = 1 - c.rank();
    c.batch_send_recv({{P2pOp::Kind::kSend, TensorView(out.data(), DType::kF32, Shape{4}), peer},
                       {P2pOp::Kind::kRecv, TensorView(in.data(), DType::kF32, Shape{4}), peer}})
        ->wait(5s);
    EXPECT_EQ(in, std::vector<float>(4, static_cast<float>(peer + 10)));
  });
}

TEST(LocalCommunicator, AsyncCollectivesCompleteInIssueOrderAndOverlapTheCaller) {
  LocalWorld world(4, 20s);
  world.run([&](Communicator& c) {
    std::vector<std::vector<float>> bufs(6, std::vector<float>(1000));
    std::vector<WorkPtr> works;
    for (std::size_t k = 0; k < bufs.size(); ++k) {
      std::fill(bufs[k].begin(), bufs[k].end(), static_cast<float>(k + c.rank()));
      works.push_back(c.all_reduce_async(TensorView(bufs[k].data(), DType::kF32, Shape{1000}), ReduceOp::kSum));
    }
    for (std::size_t k = 0; k < bufs.size(); ++k) {
      works[k]->wait(10s);
      EXPECT_TRUE(works[k]->completed());
      EXPECT_EQ(bufs[k][999], static_cast<float>(4 * k + 6));
    }
  });
}

TEST(LocalCommunicator, SubgroupsAreIsolatedAndTranslateRanks) {
  LocalWorld world(4, 20s);
  world.run([&](Communicator& c) {
    // Two disjoint pairs {0,2} and {1,3}, plus a reversed-order group of everyone.
    const bool even = c.rank() % 2 == 0;
    auto pair = c.split(even ? std::vector<int>{0, 2} : std::vector<int>{1, 3}, even ? "even" : "odd");
    auto rev = c.split({3, 2, 1, 0}, "reversed");
    EXPECT_EQ(pair->size(), 2);
    EXPECT_EQ(pair->rank(), c.rank() / 2);
    EXPECT_EQ(rev->rank(), 3 - c.rank());
    EXPECT_EQ(pair->global_ranks()[static_cast<std::size_t>(pair->rank())], c.rank());
    std::vector<float> x{static_cast<float>(c.rank())};
    auto w = pair->all_reduce_async(TensorView(x.data(), DType::kF32, Shape{1}), ReduceOp::kSum);
    std::vector<float> g(4), me{static_cast<float>(c.rank())};
    rev->all_gather(TensorView(me.data(), DType::kF32, Shape{1}), TensorView(g.data(), DType::kF32, Shape{4}));
    EXPECT_EQ(g, (std::vector<float>{3, 2, 1, 0}));
    w->wait(5s);
    EXPECT_EQ(x[0], even ? 2.0f : 4.0f);
  });
}

TEST(LocalCommunicator, TimeoutNamesTheCollectiveTheGroupAndThePeer) {
  LocalWorld world(2, 300ms);
  try {
    world.run([&](Communicator& c) {
      if (c.rank() == 1) return;  // never joins
      std::vector<float> x(4, 1.0f);
      c.all_reduce(TensorView(x.data(), DType::kF32, Shape{4}));
    });
    FAIL() << "expected a timeout";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 0:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("all_reduce on group 'world' [ranks 0,1]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("timed out"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1"), std::string::npos) << msg;
  }
}

TEST(LocalCommunicator, AsyncWaitTimeoutSaysWhatItWaitsFor) {
  LocalWorld world(2, 2s);
  world.run([&](Communicator& c) {
    std::vector<float> x(4, 1.0f);
    if (c.rank() == 0) {
      auto w = c.all_reduce_async(TensorView(x.data(), DType::kF32, Shape{4}), ReduceOp::kSum);
      try {
        w->wait(50ms);
        ADD_FAILURE() << "expected the wait to time out";
      } catch (const RuntimeError& e) {
        EXPECT_NE(std::string(e.what()).find("waiting for a message from rank 1"), std::string::npos) << e.what();
      }
      w->wait(5s);  // rank 1 arrives late, but within the communicator's timeout
      EXPECT_EQ(x[0], 2.0f);
    } else {
      std::this_thread::sleep_for(300ms);
      c.all_reduce(TensorView(x.data(), DType::kF32, Shape{4}));
    }
  });
}

TEST(LocalCommunicator, AFailingRankAbortsTheOthersQuickly) {
  LocalWorld world(3, 60s);
  const auto start = std::chrono::steady_clock::now();
  try {
    world.run([&](Communicator& c) {
      if (c.rank() == 2) throw DataError("bad shard");
      std::vector<float> x(4);
      c.all_reduce(TensorView(x.data(), DType::kF32, Shape{4}));
    });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "rank 2: bad shard");
    EXPECT_EQ(e.code(), ExitCode::kData);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(LocalCommunicator, RejectsBadArguments) {
  LocalWorld world(2, 5s);
  world.run([&](Communicator& c) {
    std::vector<float> x(4), y(6);
    EXPECT_THROW(c.all_gather(TensorView(x.data(), DType::kF32, Shape{4}), TensorView(y.data(), DType::kF32, Shape{6})),
                 RuntimeError);
    std::vector<std::int32_t> i(2);
    EXPECT_THROW(c.all_reduce(TensorView(i.data(), DType::kI32, Shape{2}), ReduceOp::kAvg), RuntimeError);
    TensorView strided(x.data(), DType::kF32, Shape{2}, Shape{2}, Device::cpu());
    EXPECT_THROW(c.all_reduce(strided), RuntimeError);
    EXPECT_THROW(c.send(TensorView(x.data(), DType::kF32, Shape{4}), c.rank()), RuntimeError);
    EXPECT_THROW(c.split({0, 0}, "dup"), RuntimeError);
  });
}

TEST(LocalCommunicator, SingleRankCommunicatorCopiesAndIsIdentity) {
  auto c = make_single_rank_communicator();
  std::vector<float> x{1.5f, -2.0f}, out(2);
  c->all_reduce(TensorView(x.data(), DType::kF32, Shape{2}), ReduceOp::kAvg);
  EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));
  c->all_gather(TensorView(x.data(), DType::kF32, Shape{2}), TensorView(out.data(), DType::kF32, Shape{2}));
  EXPECT_EQ(out, x);
  c->barrier();
}

}  // namespace
}  // namespace bignlp::comm
