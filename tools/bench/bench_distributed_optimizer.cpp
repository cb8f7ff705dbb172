// bench_distributed_optimizer: memory per data-parallel rank and the time of the gradient sync +
// optimizer step, for the distributed optimizer (distributed_fused_adam) against the replicated
// one (fused_adam) measured in the same run, on d thread ranks of one process (CPU backend).
//
//   bench_distributed_optimizer                                  # L4 C512 V50257 bf16, d = 1 2 4
//   bench_distributed_optimizer --layers 12 --hidden 768 --heads 12 --precision 32 --dp 1,2
// Each (optimizer, d) runs in a child process, so its resident set starts clean. Printed per rank:
// optimizer state (fp32 master weights kept apart from the compute copy, plus both Adam moments),
// the parameter store (compute copy, fp32 gradients, master weights), the tensor allocator's bytes
// in use before the step and its peak over the steps (communication staging included), the growth
// of the process RSS divided by d, and the seconds of one step (bucketed
// gradient reduction: all-reduce or reduce-scatter; norm; Adam; all-gather of the updated weights
// for the distributed optimizer). Ratios are against the replicated optimizer on one rank.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <string>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/core/strings.h"
#include "bignlp/model/gpt.h"
#include "bignlp/train/optimizer.h"

namespace {

using namespace bignlp;
using Clock = std::chrono::steady_clock;

/// Resident set size of this process now (/proc/self/statm), in bytes.
double rss_bytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

struct Figures {
  double state = 0, store = 0, allocator = 0, peak = 0, rss = 0, step = 0;
};

/// One (optimizer, d) configuration on d thread ranks; rank 0's figures (the largest shard).
Figures run(const model::GptConfig& cfg, bool distributed, int dp, std::int64_t bucket_numel, int steps, int threads) {
  Figures out;
  const double rss0 = rss_bytes();
  comm::LocalWorld world(dp, std::chrono::minutes(10));
  world.run([&](comm::Communicator& w) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu(threads);
    ctx.allocator = &alloc;
    auto groups = comm::ParallelGroups::create(w, comm::ProcessGrid(dp, w.rank(), 1, 1));
    parallel::ParallelOptions options;
    if (distributed) options.distributed_optimizer_bucket_numel = bucket_numel;
    const parallel::ParallelContext pc = parallel::ParallelContext::from(groups, options);
    model::GptModel m(cfg, ctx, pc);
    m.initialize(1234);
    auto& store = m.parameters();
    std::vector<parallel::FlatRange> ranges;
    for (const auto& p : store.params()) ranges.push_back({p.offset, p.offset + p.numel()});
    std::unique_ptr<parallel::GradBuckets> buckets;
    if (pc.dp != nullptr)
      buckets = std::make_unique<parallel::GradBuckets>(
          pc.dp, ctx, ranges, bucket_numel,
          distributed ? parallel::GradBuckets::Mode::kReduceScatter : parallel::GradBuckets::Mode::kAllReduce);
    train::OptimizerConfig oc{distributed ? "distributed_fused_adam" : "fused_adam", 1e-4, 0.9, 0.95, 1e-8, 0.1};
    train::AdamOptimizer opt(store, oc, ctx, pc, distributed ? buckets.get() : nullptr);
    store.zero_grad(ctx);
    w.barrier();
    if (w.rank() == 0) {
      out.state = static_cast<double>(opt.state_bytes());
      out.store = static_cast<double>(store.bytes());
      out.allocator = static_cast<double>(alloc.stats().in_use);
      out.rss = (rss_bytes() - rss0) / dp;
    }
    double total = 0.0;
    for (int s = 0; s <= steps; ++s) {
      ops::fill(ctx, store.flat_grad(), 1e-3 * (w.rank() + 1));
      w.barrier();
      const auto t0 = Clock::now();
      if (buckets) {
        buckets->set_buffer(store.flat_grad());
        for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) buckets->mark_ready(it->begin);
        buckets->finish();
      }
      opt.step(1e-4, 1.0, 1.0);
      w.barrier();
      if (s > 0) total += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    if (w.rank() == 0) {
      out.step = total / steps;
      out.peak = static_cast<double>(alloc.stats().peak_in_use);
    }
  });
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Distributed optimizer benchmark: memory per DP rank and step time (CPU thread ranks)"};
  int layers = 4, heads = 8, steps = 3, threads = 1;
  std::int64_t hidden = 512, seq = 1024, vocab = 50257;
  double bucket_mb = 25.0;
  std::string precision = "bf16";
  std::vector<int> dps{1, 2, 4};
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--seq-length", seq);
  app.add_option("--vocab", vocab);
  app.add_option("--precision", precision)->check(CLI::IsMember({"32", "bf16", "16"}));
  app.add_option("--dp", dps, "data-parallel sizes")->delimiter(',');
  app.add_option("--bucket-mb", bucket_mb, "gradient bucket size (model.optim.bucket_cap_mb)");
  app.add_option("--steps", steps, "timed steps (after one warm-up step)");
  app.add_option("--threads", threads, "OpenMP threads per rank");
  CLI11_PARSE(app, argc, argv);

  model::GptConfig c;
  c.vocab_size = vocab;
  c.seq_length = seq;
  c.num_layers = layers;
  c.hidden_size = hidden;
  c.num_attention_heads = heads;
  c.precision = model::parse_precision(precision);
  const auto bucket = std::max<std::int64_t>(1, static_cast<std::int64_t>(bucket_mb * 1024 * 1024 / 4));
  std::printf("model: L=%d C=%lld V=%lld, %lld parameters, precision %s, buckets of %.1f MB\n", layers,
              static_cast<long long>(hidden), static_cast<long long>(vocab), static_cast<long long>(c.num_parameters()),
              precision.c_str(), bucket_mb);
  std::printf("%-22s %3s %12s %12s %12s %12s %12s %10s %8s %8s\n", "optimizer", "d", "state/rank", "store/rank",
              "alloc/rank", "peak/rank", "RSS/rank", "step s", "state", "peak");
  Figures base;
  for (const bool distributed : {false, true}) {
    for (const int dp : dps) {
      if (!distributed && dp > 1 && dp != dps.back()) continue;  // the replicated peer: d = 1 and the largest d
      int pipe_fd[2];
      if (pipe(pipe_fd) != 0) return 1;
      const pid_t pid = fork();
      if (pid == 0) {
        close(pipe_fd[0]);
        const Figures f = run(c, distributed, dp, bucket, steps, threads);
        const ssize_t n = write(pipe_fd[1], &f, sizeof f);
        _exit(n == static_cast<ssize_t>(sizeof f) ? 0 : 1);
      }
      close(pipe_fd[1]);
      Figures f;
      const ssize_t n = read(pipe_fd[0], &f, sizeof f);
      close(pipe_fd[0]);
      int status = 0;
      waitpid(pid, &status, 0);
      if (n != static_cast<ssize_t>(sizeof f) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "configuration d=%d failed\n", dp);
        return 1;
      }
      if (!distributed && dp == 1) base = f;
      const auto bytes = [](double b) { return format_bytes(static_cast<std::uint64_t>(std::max(0.0, b))); };
      std::printf("%-22s %3d %12s %12s %12s %12s %12s %10.4f %8.3f %8.3f\n",
                  distributed ? "distributed_fused_adam" : "fused_adam", dp, bytes(f.state).c_str(),
                  bytes(f.store).c_str(), bytes(f.allocator).c_str(), bytes(f.peak).c_str(), bytes(f.rss).c_str(),
                  f.step, base.state > 0 ? f.state / base.state : 1.0, base.peak > 0 ? f.peak / base.peak : 1.0);
      std::fflush(stdout);
    }
  }
  std::printf("state and peak columns: ratios against fused_adam on one rank\n");
  return 0;
}
