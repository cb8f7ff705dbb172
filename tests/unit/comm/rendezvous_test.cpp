// Stores (file and TCP), environment parsing, and gloo worlds connected through them (each rank a
// thread with its own gloo context: real TCP pairs on loopback).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "bignlp/comm/file_store.h"
#include "bignlp/comm/gloo_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/comm/rendezvous.h"
#include "bignlp/comm/tcp_store.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace bignlp::comm {
namespace {

using namespace std::chrono_literals;

void exercise_store(Store& a, Store& b) {
  a.set("x", std::string("hello"));
  EXPECT_EQ(b.get_string("x", 1s), "hello");
  EXPECT_TRUE(b.check({"x"}));
  EXPECT_FALSE(b.check({"x", "y"}));
  std::thread late([&] {
    std::this_thread::sleep_for(50ms);
    b.set("y", std::string("later"));
  });
  EXPECT_EQ(a.get_string("y", 5s), "later");
  late.join();
  EXPECT_EQ(a.add("n", 2), 2);
  EXPECT_EQ(b.add("n", 3), 5);
  try {
    a.get("missing", 30ms);
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("'missing'"), std::string::npos) << e.what();
  }
  PrefixStore pa(a, "job"), pb(b, "job");
  pa.set("k", std::string("v"));
  EXPECT_EQ(pb.get_string("k", 1s), "v");
  EXPECT_FALSE(b.check({"k"}));
}

TEST(FileStore, SetGetAddCheckTimeout) {
  TempDir dir;
  FileStore a(dir.path() / "store"), b(dir.path() / "store");
  exercise_store(a, b);
}

TEST(TcpStore, SetGetAddCheckTimeout) {
  TcpStoreOptions so;
  so.is_server = true;
  TcpStore server(so);
  TcpStoreOptions co;
  co.port = server.port();
  TcpStore client(co);
  exercise_store(server, client);
}

TEST(TcpStore, ClientWaitsForALateServerAndNamesTheAddressOnFailure) {
  TcpStoreOptions co;
  co.port = 1;  // nothing listens on port 1
  co.connect_timeout = 100ms;
  try {
    TcpStore client(co);
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
}

TEST(Rendezvous, FirstHostOfSlurmNodeLists) {
  EXPECT_EQ(first_host("node001"), "node001");
  EXPECT_EQ(first_host("gpu[01-04,07],login"), "gpu01");
  EXPECT_EQ(first_host("gpu[7,9-10]"), "gpu7");
  EXPECT_EQ(first_host("a,b,c"), "a");
  EXPECT_EQ(first_host("rack1-n[003-010]"), "rack1-n003");
}

TEST(Rendezvous, ParsesSlurmTorchrunAndDefaults) {
  const auto s = parse_distributed_env({{"SLURM_PROCID", "5"},
                                        {"SLURM_NTASKS", "16"},
                                        {"SLURM_LOCALID", "1"},
                                        {"SLURM_NNODES", "2"},
                                        {"SLURM_JOB_ID", "4242"},
                                        {"SLURM_JOB_NODELIST", "dgx[12-13]"},
                                        {"SLURMD_NODENAME", "dgx13"}});
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 16);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.num_nodes, 2);
  EXPECT_EQ(s.master_addr, "dgx12");
  EXPECT_EQ(s.node_name, "dgx13");
  EXPECT_EQ(resolve_master_port(s, 0), 24242);
  EXPECT_EQ(resolve_master_port(s, 6000), 6000);

  const auto t = parse_distributed_env({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(t.source, "torchrun");
  EXPECT_EQ(t.master_addr, "h");
  EXPECT_EQ(resolve_master_port(t, 0), 1234);

  const auto d = parse_distributed_env({});
  EXPECT_EQ(d.world_size, 1);
  EXPECT_EQ(resolve_master_port(d, 0), 29500);

  try {
    parse_distributed_env({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_PROCID=4"), std::string::npos);
  }
  EXPECT_THROW(parse_distributed_env({{"SLURM_PROCID", "x"}}), ConfigError);
  EXPECT_EQ(parse_backend("NCCL"), Backend::kNccl);
  EXPECT_THROW(parse_backend("mpi"), ConfigError);
}

// Four ranks (threads) rendezvous through a TCP store exactly as separate processes would, then
// run collectives and split into a 2x2 grid over real gloo TCP pairs.
TEST(Gloo, FourRanksOverTcpStoreWithGroups) {
  const int n = 4;
  int port = 0;
  {
    // Find a free port by binding a server briefly.
    TcpStoreOptions so;
    so.is_server = true;
    TcpStore probe(so);
    port = probe.port();
  }
  std::vector<std::thread> threads;
  std::vector<std::string> errors(n);
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistributedEnv env = parse_distributed_env({{"SLURM_PROCID", std::to_string(r)},
                                                    {"SLURM_NTASKS", std::to_string(n)},
                                                    {"SLURM_JOB_NODELIST", "localhost"}});
        env.master_port = port;
        RendezvousOptions opts;
        opts.timeout = 30s;
        World world = connect_world(env, opts);
        Communicator& c = *world.communicator;
        EXPECT_STREQ(c.backend(), "gloo");
        std::vector<float> x(1000, static_cast<float>(r + 1));
        c.all_reduce(TensorView(x.data(), DType::kF32, Shape{1000}));
        EXPECT_EQ(x[999], 10.0f);
        const ProcessGrid grid(n, r, 2, 1);
        auto groups = ParallelGroups::create(c, grid);
        std::vector<float> t{static_cast<float>(r)};
        groups.tp->all_reduce(TensorView(t.data(), DType::kF32, Shape{1}));
        EXPECT_EQ(t[0], r < 2 ? 1.0f : 5.0f);
        std::vector<float> g(2), mine{static_cast<float>(r)};
        groups.dp->all_gather(TensorView(mine.data(), DType::kF32, Shape{1}), TensorView(g.data(), DType::kF32, Shape{2}));
        EXPECT_EQ(g, (std::vector<float>{static_cast<float>(r % 2), static_cast<float>(r % 2 + 2)}));
        // p2p ring on the world.
        std::vector<float> out{static_cast<float>(r)}, in(1);
        c.batch_send_recv({{P2pOp::Kind::kSend, TensorView(out.data(), DType::kF32, Shape{1}), (r + 1) % n},
                           {P2pOp::Kind::kRecv, TensorView(in.data(), DType::kF32, Shape{1}), (r + n - 1) % n}})
            ->wait(10s);
        EXPECT_EQ(in[0], static_cast<float>((r + n - 1) % n));
        c.barrier();
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) EXPECT_EQ(errors[static_cast<std::size_t>(r)], "") << "rank " << r;
}

/// Two ranks (threads) connected over gloo through a file store; `body(rank, comm)` runs on each.
/// Returns what each rank threw ("" when it returned).
std::vector<std::string> run_two_gloo_ranks(const std::filesystem::path& store_dir,
                                            const std::function<void(int, std::unique_ptr<Communicator>&)>& body) {
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        FileStore store(store_dir);
        GlooOptions go;
        go.timeout = 20s;
        auto c = make_gloo_communicator(store, r, 2, go);
        body(r, c);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

TEST(Gloo, FileStoreRendezvousAndTimeoutNamesTheMissingPeer) {
  TempDir dir;
  std::atomic<bool> timed_out{false};
  const auto errors = run_two_gloo_ranks(dir.path() / "rdzv", [&](int r, std::unique_ptr<Communicator>& c) {
    c->set_timeout(std::chrono::milliseconds(500));
    std::vector<float> x(8, 1.0f);
    c->all_reduce(TensorView(x.data(), DType::kF32, Shape{8}));
    EXPECT_EQ(x[0], 2.0f);
    if (r == 0) {
      try {
        c->all_reduce(TensorView(x.data(), DType::kF32, Shape{8}));  // rank 1 never joins
        ADD_FAILURE() << "expected a timeout";
      } catch (const RuntimeError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("all_reduce on group 'world' [ranks 0,1]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("rank 1"), std::string::npos) << msg;
      }
      timed_out = true;
    } else {
      while (!timed_out) std::this_thread::sleep_for(10ms);
    }
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

// A send waits for its peer's matching receive. When the peer goes away before posting it, the
// send fails with an error naming the peer as soon as the connection drops, not at the timeout.
TEST(Gloo, ASendToAPeerThatDiesFailsNamingIt) {
  TempDir dir;
  std::string send_error;
  std::atomic<bool> sending{false};
  const auto errors = run_two_gloo_ranks(dir.path() / "rdzv", [&](int r, std::unique_ptr<Communicator>& c) {
    c->set_timeout(std::chrono::milliseconds(60000));
    std::vector<float> x(8, 1.0f);
    c->all_reduce(TensorView(x.data(), DType::kF32, Shape{8}));
    if (r == 0) {
      sending = true;
      try {
        c->send(TensorView(x.data(), DType::kF32, Shape{8}), 1);  // rank 1 never receives it
        send_error = "the send completed";
      } catch (const RuntimeError& e) {
        send_error = e.what();
      }
    } else {
      while (!sending) std::this_thread::sleep_for(10ms);
      std::this_thread::sleep_for(300ms);  // rank 0's send is posted and waiting
      c.reset();                           // closes this rank's connections
    }
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_NE(send_error.find("rank 1"), std::string::npos) << send_error;
  EXPECT_NE(to_lower(send_error).find("connection"), std::string::npos) << send_error;
  EXPECT_EQ(send_error.find("timed out"), std::string::npos) << send_error;
}

}  // namespace
}  // namespace bignlp::comm
