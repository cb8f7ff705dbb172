// bench_comm: bus bandwidth of each collective per message size (nccl-tests' algbw/busbw).
//
//   bench_comm --backend gloo --spawn 4            4 local processes over loopback TCP
//   srun -n 16 bench_comm --backend nccl           one rank per GPU (NCCL builds)
//   bench_comm --backend local --ranks 4           threads of one process (the test backend)
// For each collective (all_reduce, all_gather, reduce_scatter, broadcast, sendrecv: a ring
// exchange) and size S (bytes of the full tensor, doubling/quadrupling from --min-bytes to
// --max-bytes), rank 0 prints the mean time over --iters (after --warmup), the algorithm
// bandwidth algbw = S / t and the bus bandwidth busbw = algbw * f, f = 2(n-1)/n for all_reduce,
// (n-1)/n for all_gather and reduce_scatter, 1 for broadcast and sendrecv: busbw is comparable
// with a link's speed whatever n is (NVIDIA nccl-tests, PERFORMANCE.md).
// With gloo the same run measures gloo's own algorithms (gloo::allreduce ring, allgather,
// broadcast) on a separate connection set as the peer, and prints ours / gloo's time ratio.
// Rank, world and master come from the Slurm variables (or --spawn): comm/rendezvous.h.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "bignlp/comm/gloo_communicator.h"
#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/rendezvous.h"
#include "bignlp/comm/tcp_store.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"
#if defined(BIGNLP_WITH_NCCL)
#include <cuda_runtime.h>

#include "bignlp/comm/nccl_communicator.h"
#endif

namespace {

using namespace bignlp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string backend = "gloo";
  int spawn = 0;
  int ranks = 4;
  std::int64_t min_bytes = 1024;
  std::int64_t max_bytes = 64 << 20;
  int factor = 4;
  int iters = 10;
  int warmup = 3;
  std::string ops = "all_reduce,all_gather,reduce_scatter,broadcast,sendrecv";
  bool peer = true;
};

double bus_factor(const std::string& op, int n) {
  if (op == "all_reduce") return 2.0 * (n - 1) / n;
  if (op == "all_gather" || op == "reduce_scatter") return static_cast<double>(n - 1) / n;
  return 1.0;
}

/// Device memory for one message: host vectors for the CPU backends, cudaMalloc for NCCL.
struct Message {
  Device device = Device::cpu();
  std::vector<float> host_in, host_out;
  void* dev_in = nullptr;
  void* dev_out = nullptr;
  Message(Device d, std::int64_t in_count, std::int64_t out_count) : device(d) {
    if (d.is_cpu()) {
      host_in.assign(static_cast<std::size_t>(in_count), 1.0f);
      host_out.assign(static_cast<std::size_t>(out_count), 0.0f);
      return;
    }
#if defined(BIGNLP_WITH_NCCL)
    cudaMalloc(&dev_in, static_cast<std::size_t>(in_count) * 4);
    cudaMalloc(&dev_out, static_cast<std::size_t>(out_count) * 4);
    cudaMemset(dev_in, 0, static_cast<std::size_t>(in_count) * 4);
#endif
  }
  ~Message() {
#if defined(BIGNLP_WITH_NCCL)
    if (dev_in) cudaFree(dev_in);
    if (dev_out) cudaFree(dev_out);
#endif
  }
  TensorView in(std::int64_t n) {
    return TensorView(device.is_cpu() ? static_cast<void*>(host_in.data()) : dev_in, DType::kF32, Shape{n}, Shape{1}, device);
  }
  TensorView out(std::int64_t n) {
    return TensorView(device.is_cpu() ? static_cast<void*>(host_out.data()) : dev_out, DType::kF32, Shape{n}, Shape{1},
                      device);
  }
};

/// Runs `op` once on a full-tensor size of `bytes`.
void run_op(comm::Communicator& c, const std::string& op, Message& m, std::int64_t bytes) {
  const int n = c.size();
  const std::int64_t count = bytes / 4;
  if (op == "all_reduce") {
    c.all_reduce(m.in(count));
  } else if (op == "all_gather") {
    c.all_gather(m.in(count / n), m.out(count / n * n));
  } else if (op == "reduce_scatter") {
    c.reduce_scatter(m.in(count / n * n), m.out(count / n));
  } else if (op == "broadcast") {
    c.broadcast(m.in(count), 0);
  } else if (op == "sendrecv") {
    const int r = c.rank();
    c.batch_send_recv({{comm::P2pOp::Kind::kSend, m.in(count), (r + 1) % n},
                       {comm::P2pOp::Kind::kRecv, m.out(count), (r + n - 1) % n}})
        ->wait(c.timeout());
  } else {
    throw UsageError(fmt::format("unknown collective '{}' (all_reduce, all_gather, reduce_scatter, broadcast, sendrecv)", op));
  }
}

/// Mean seconds per call of `fn` over iters, after warmup; the slowest rank's time counts.
template <typename F>
double time_it(comm::Communicator& c, const Options& o, F fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  c.barrier();
  const auto t0 = Clock::now();
  for (int i = 0; i < o.iters; ++i) fn();
  c.barrier();
  float secs = static_cast<float>(std::chrono::duration<double>(Clock::now() - t0).count() / o.iters);
  std::vector<float> host{secs};
  if (c.device().is_cpu()) {
    c.all_reduce(TensorView(host.data(), DType::kF32, Shape{1}), comm::ReduceOp::kMax);
  }
  return host[0];
}

void bench(comm::Communicator& c, const Options& o, comm::GlooNativeCollectives* native) {
  const int n = c.size();
  const bool lead = c.rank() == 0;
  if (lead) {
    std::printf("# bench_comm: backend %s, %d ranks, fp32, %d iterations after %d warm-up\n", c.backend(), n, o.iters,
                o.warmup);
    std::printf("%-15s %12s %12s %12s %12s %12s%s\n", "collective", "size", "count", "time_us", "algbw_GB/s",
                "busbw_GB/s", native ? "   peer_us  ours/peer" : "");
  }
  const std::int64_t max_count = o.max_bytes / 4;
  Message m(c.device(), max_count, max_count);
  for (const auto& op : split(o.ops, ',')) {
    for (std::int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor) {
      const std::int64_t count = bytes / 4 / n * n;  // divisible by n for gather/scatter
      if (count == 0) continue;
      const std::int64_t effective = count * 4;
      const double t = time_it(c, o, [&] { run_op(c, op, m, effective); });
      const double algbw = static_cast<double>(effective) / t / 1e9;
      std::string peer;
      if (native != nullptr && (op == "all_reduce" || op == "all_gather" || op == "broadcast")) {
        const double tp = time_it(c, o, [&] {
          if (op == "all_reduce") {
            native->all_reduce_sum(m.host_in.data(), static_cast<std::size_t>(count));
          } else if (op == "all_gather") {
            native->all_gather(m.host_in.data(), m.host_out.data(), static_cast<std::size_t>(count / n));
          } else {
            native->broadcast(m.host_in.data(), static_cast<std::size_t>(count), 0);
          }
        });
        peer = fmt::format(" {:>9.1f} {:>10.2f}", tp * 1e6, t / tp);
      }
      if (lead) {
        std::printf("%-15s %12s %12lld %12.1f %12.3f %12.3f%s\n", op.c_str(), format_bytes(effective).c_str(),
                    static_cast<long long>(count), t * 1e6, algbw, algbw * bus_factor(op, n), peer.c_str());
        std::fflush(stdout);
      }
    }
  }
}


int run_rank(const Options& o, comm::DistributedEnv env) {
  comm::RendezvousOptions ro;
  ro.backend = comm::parse_backend(o.backend);
  ro.cuda_device = env.local_rank;
  env.master_port = comm::resolve_master_port(env, 0);
  if (env.world_size == 1 && ro.backend == comm::Backend::kGloo) {
    std::fprintf(stderr, "bench_comm: one rank measures nothing; use --spawn N or srun -n N\n");
    return 2;
  }
  comm::World world = comm::connect_world(env, ro);
  std::unique_ptr<comm::GlooNativeCollectives> native;
  if (ro.backend == comm::Backend::kGloo && o.peer) {
    comm::GlooOptions go;
    go.hostname = env.num_nodes <= 1 ? "127.0.0.1" : env.node_name;
    native = std::make_unique<comm::GlooNativeCollectives>(*world.store, env.rank, env.world_size, go);
  }
  bench(*world.communicator, o, native.get());
  world.communicator->barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"bench_comm: bus bandwidth per collective and message size"};
  app.add_option("--backend", o.backend, "local (threads), gloo (processes) or nccl (GPUs)")
      ->check(CLI::IsMember({"local", "gloo", "nccl"}));
  app.add_option("--spawn", o.spawn, "gloo: start this many local processes (else ranks come from Slurm)");
  app.add_option("--ranks", o.ranks, "local: number of thread ranks");
  app.add_option("--min-bytes", o.min_bytes, "smallest full-tensor size");
  app.add_option("--max-bytes", o.max_bytes, "largest full-tensor size");
  app.add_option("--factor", o.factor, "size multiplier between rows")->check(CLI::Range(2, 16));
  app.add_option("--iters", o.iters, "timed iterations per size")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed iterations per size");
  app.add_option("--ops", o.ops, "comma-separated collectives");
  bool no_peer = false;
  app.add_flag("--no-peer", no_peer, "gloo: skip gloo's own algorithms");
  CLI11_PARSE(app, argc, argv);
  o.peer = !no_peer;
  try {
    if (o.backend == "local") {
      comm::LocalWorld world(o.ranks);
      world.run([&](comm::Communicator& c) { bench(c, o, nullptr); });
      return 0;
    }
    if (o.spawn > 0) {
      // Local processes over loopback: rank r is child r; the parent waits.
      comm::TcpStoreOptions probe;
      probe.is_server = true;
      int port = 0;
      {
        comm::TcpStore s(probe);
        port = s.port();
      }
      const std::string secret = fmt::format("bench-{}-{}", getpid(), port);  // shared by the children
      std::vector<pid_t> pids;
      for (int r = 0; r < o.spawn; ++r) {
        const pid_t pid = fork();
        if (pid == 0) {
          comm::DistributedEnv env;
          env.rank = r;
          env.world_size = o.spawn;
          env.local_rank = r;
          env.master_port = port;
          env.store_secret = secret;
          env.source = "spawn";
          int rc = 1;
          try {
            rc = run_rank(o, env);
          } catch (const std::exception& e) {
            std::cerr << "bench_comm: rank " << r << ": " << e.what() << "\n";
          }
          std::fflush(stdout);
          _exit(rc);
        }
        pids.push_back(pid);
      }
      int worst = 0;
      for (pid_t p : pids) {
        int st = 0;
        waitpid(p, &st, 0);
        worst = std::max(worst, WIFEXITED(st) ? WEXITSTATUS(st) : 1);
      }
      return worst;
    }
    return run_rank(o, comm::parse_distributed_env(process_environment()));
  } catch (const Error& e) {
    std::cerr << "bench_comm: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bench_comm: " << e.what() << "\n";
    return 1;
  }
}
