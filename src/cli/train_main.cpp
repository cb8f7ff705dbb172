// bignlp-train: GPT pre-training from a saved training stage config.
//
//   bignlp-train --config-path DIR --config-name NAME.yaml [OVERRIDE ...] [--threads N]
// The launcher writes the stage config (trainer.*, model.*, exp_manager.*, run.*) and runs this.
// SIGTERM and SIGUSR1 (Slurm's pre-timeout signal) finish the current step, save a checkpoint and
// exit 0. Index: train/config_binding.h (keys), train/trainer.h (loop), train/checkpoint.h,
// train/metrics.h (stdout line), docs/engine.md.
#include <csignal>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>

#include "bignlp/config/worker_config.h"
#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/train/config_binding.h"
#include "bignlp/train/trainer.h"

namespace {

// Set by the signal handler, polled by the trainer after every step. Only main() sees it.
std::atomic<int> g_stop_requested{0};

extern "C" void request_stop(int signal) { g_stop_requested.store(signal); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bignlp::Logger log("bignlp-train");
  try {
    bignlp::config::WorkerConfigArgs cfg_args = bignlp::config::extract_worker_config_args(args);
    CLI::App app{"bignlp-train: GPT pre-training from a training stage config"};
    int threads = 0;
    std::string level = "info";
    app.add_option("--threads", threads, "CPU threads for the CPU ops (0: all)");
    app.add_option("--log-level", level, "trace, debug, info, warn, error");
    std::reverse(args.begin(), args.end());
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    log = log.with_level(bignlp::parse_log_level(level));
    const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(cfg_args);
    const bignlp::config::ConfigView cfg(root);
    bignlp::train::TrainingConfig tc = bignlp::train::bind_training_config(cfg);
    if (tc.world_size() > 1)
      throw bignlp::ConfigError(
          "trainer.num_nodes x trainer.devices > 1: this build trains on one rank (tensor/pipeline/data parallel "
          "ranks need the parallel backend)");
    tc.cpu_threads = threads;
    std::signal(SIGTERM, request_stop);
    std::signal(SIGUSR1, request_stop);
    bignlp::CpuAllocator alloc;
    bignlp::ops::OpContext ctx = bignlp::ops::OpContext::cpu(threads);
    ctx.allocator = &alloc;
    bignlp::train::Trainer trainer(tc, log, ctx, stdout);
    trainer.set_stop_flag(&g_stop_requested);
    const bignlp::train::TrainResult r = trainer.fit();
    log.info("finished at step {} ({} samples); last checkpoint {}", r.global_step, r.consumed_samples,
             r.last_checkpoint.string());
    return 0;
  } catch (const bignlp::Error& e) {
    std::cerr << "bignlp-train: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-train: " << e.what() << "\n";
    return static_cast<int>(bignlp::ExitCode::kRuntime);
  }
}
