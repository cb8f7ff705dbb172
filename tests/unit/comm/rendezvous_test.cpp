// Stores (file and TCP), environment parsing, and gloo worlds connected through them (each rank a
// thread with its own gloo context: real TCP pairs on loopback).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
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
  so.secret = "s3cret";
  TcpStore server(so);
  TcpStoreOptions co;
  co.port = server.port();
  co.secret = "s3cret";
  TcpStore client(co);
  exercise_store(server, client);
}

// --- hostile peers: what another user on the node could send to the store's port ---------------

// A raw TCP connection to 127.0.0.1:port (or another loopback address); -1 when refused.
int raw_connect(int port, const char* addr = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, addr, &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

template <typename T>
void append(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
std::string handshake(const std::string& secret) {
  std::string m;
  append(m, std::uint32_t{0x54534e42});
  append(m, static_cast<std::uint32_t>(secret.size()));
  return m + secret;
}
std::string set_request(const std::string& key, const std::string& value) {
  std::string m(1, '\x01');
  append(m, static_cast<std::uint32_t>(key.size()));
  m += key;
  append(m, static_cast<std::uint64_t>(value.size()));
  return m + value;
}
void send_bytes(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}
// True when the server closes `fd` within `within` (reads past any reply bytes).
bool closed_by_server(int fd, std::chrono::milliseconds within = 5s) {
  const auto end = std::chrono::steady_clock::now() + within;
  char buf[256];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return true;
  }
  return false;
}

struct GuardedStore {
  TcpStore server;
  TcpStore client;
  static TcpStoreOptions server_options() {
    TcpStoreOptions so;
    so.is_server = true;
    so.secret = "job-token-1234";
    so.handshake_timeout = 300ms;
    so.max_value_bytes = 1 << 20;
    return so;
  }
  static TcpStoreOptions client_options(int port) {
    TcpStoreOptions co;
    co.port = port;
    co.secret = "job-token-1234";
    co.max_value_bytes = 1 << 20;
    return co;
  }
  GuardedStore() : server(server_options()), client(client_options(server.port())) {}
  // The store still serves its own job after an attack.
  void expect_alive() {
    client.set("alive", std::string("yes"));
    EXPECT_EQ(server.get_string("alive", 2s), "yes");
    TcpStore late(client_options(server.port()));
    EXPECT_EQ(late.get_string("alive", 2s), "yes");
  }
};

TEST(TcpStoreHostile, ListensOnTheMasterAddressOnly) {
  GuardedStore s;
  EXPECT_EQ(s.server.listen_address(), "127.0.0.1");
  // Every 127.x address reaches this host; a server on 0.0.0.0 would accept this connection.
  const int other = raw_connect(s.server.port(), "127.0.0.2");
  EXPECT_EQ(other, -1) << "the store accepted a connection on an address other than MASTER_ADDR";
  if (other >= 0) ::close(other);
}

TEST(TcpStoreHostile, ConnectionWithoutTheSecretCannotWriteOrRead) {
  GuardedStore s;
  s.client.set("gloo/rank0", std::string("10.0.0.1:4000"));
  // The old protocol's request straight away: no handshake.
  const int fd = raw_connect(s.server.port());
  ASSERT_GE(fd, 0);
  send_bytes(fd, set_request("gloo/rank0", "evil:1"));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
  EXPECT_EQ(s.client.get_string("gloo/rank0", 1s), "10.0.0.1:4000");
  s.expect_alive();
}

TEST(TcpStoreHostile, WrongSecretIsRefusedAndNothingIsWritten) {
  GuardedStore s;
  const int fd = raw_connect(s.server.port());
  ASSERT_GE(fd, 0);
  send_bytes(fd, handshake("job-token-1235") + set_request("gloo/rank1", "evil:1"));
  char status = 0;
  ASSERT_EQ(::recv(fd, &status, 1, 0), 1);
  EXPECT_EQ(status, 2);  // refused
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
  EXPECT_FALSE(s.client.check({"gloo/rank1"}));
  // A TcpStore with the wrong secret gets a clear error naming the variable.
  TcpStoreOptions bad = GuardedStore::client_options(s.server.port());
  bad.secret = "guess";
  try {
    TcpStore intruder(bad);
    FAIL() << "a wrong secret was accepted";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("BIGNLP_STORE_SECRET"), std::string::npos) << e.what();
  }
  s.expect_alive();
}

TEST(TcpStoreHostile, HugeLengthAnnouncementsCloseTheConnectionNotTheProcess) {
  GuardedStore s;
  // Unauthenticated: the 17-byte message of a 2^50-byte value.
  {
    const int fd = raw_connect(s.server.port());
    std::string m(1, '\x01');
    append(m, std::uint32_t{0});
    append(m, std::uint64_t{1} << 50);
    m += std::string(4, '\0');
    send_bytes(fd, m);
    EXPECT_TRUE(closed_by_server(fd));
    ::close(fd);
  }
  // A huge secret length.
  {
    const int fd = raw_connect(s.server.port());
    std::string m;
    append(m, std::uint32_t{0x54534e42});
    append(m, std::uint32_t{0xffffffff});
    send_bytes(fd, m);
    EXPECT_TRUE(closed_by_server(fd));
    ::close(fd);
  }
  // Authenticated but over the caps: a 2^50-byte value, then a 2^31-byte key.
  for (int which = 0; which < 2; ++which) {
    const int fd = raw_connect(s.server.port());
    std::string m = handshake("job-token-1234");
    m += '\x01';
    if (which == 0) {
      append(m, std::uint32_t{1});
      m += "k";
      append(m, std::uint64_t{1} << 50);
    } else {
      append(m, std::uint32_t{1} << 31);
    }
    send_bytes(fd, m);
    EXPECT_TRUE(closed_by_server(fd));
    ::close(fd);
  }
  s.expect_alive();
  // Our own client refuses to send what the server would refuse, with the limit in the message.
  try {
    s.client.set("big", std::vector<char>((1 << 20) + 1));
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
}

TEST(TcpStoreHostile, GarbageAndSilenceAreSurvived) {
  GuardedStore s;
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    const int fd = raw_connect(s.server.port());
    ASSERT_GE(fd, 0);
    std::string junk(1 + rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 2 == 1) junk = handshake("job-token-1234") + junk;  // garbage after a valid handshake
    send_bytes(fd, junk);
    ::shutdown(fd, SHUT_WR);
    EXPECT_TRUE(closed_by_server(fd)) << "connection " << i;
    ::close(fd);
  }
  // A connection that sends nothing is closed after the handshake timeout.
  const int idle = raw_connect(s.server.port());
  EXPECT_TRUE(closed_by_server(idle, 3s));
  ::close(idle);
  s.expect_alive();
}

TEST(TcpStoreHostile, ClientTimesOutOnAPeerThatNeverAnswers) {
  // A listener that accepts and says nothing (e.g. another program on the port).
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  TcpStoreOptions co;
  co.port = ntohs(a.sin_port);
  co.secret = "x";
  co.handshake_timeout = 1000ms;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(TcpStore client(co), RuntimeError);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  ::close(lfd);
}

TEST(Rendezvous, TcpWorldNeedsTheJobSecret) {
  DistributedEnv env = parse_distributed_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(env.store_secret, "");
  try {
    connect_world(env, RendezvousOptions{});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("BIGNLP_STORE_SECRET"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_distributed_env({{"BIGNLP_STORE_SECRET", "abc"}}).store_secret, "abc");
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
  const std::string secret = "four-ranks";
  std::vector<std::thread> threads;
  std::vector<std::string> errors(n);
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistributedEnv env = parse_distributed_env({{"SLURM_PROCID", std::to_string(r)},
                                                    {"SLURM_NTASKS", std::to_string(n)},
                                                    {"SLURM_JOB_NODELIST", "localhost"}});
        env.master_port = port;
        env.store_secret = secret;
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
