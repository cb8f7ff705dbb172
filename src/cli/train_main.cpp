// bignlp-train: GPT pre-training from a saved training stage config.
//
//   bignlp-train --config-path DIR --config-name NAME.yaml [OVERRIDE ...] [--threads N] [--device cpu|cuda|auto]
// The launcher writes the stage config (trainer.*, model.*, exp_manager.*, run.*) and runs this.
// --stage fine_tuning: T5/mT5 fine-tuning from a pre-trained checkpoint (finetune/fine_tuning.h,
// docs/fine_tuning.md), the same trainer loop with its own batches, initial weights and validation.
// SIGTERM and SIGUSR1 (Slurm's pre-timeout signal) finish the current step, save a checkpoint and
// exit 0. Index: train/config_binding.h (keys), train/trainer.h (loop), checkpoint/checkpoint.h,
// train/metrics.h (stdout line), docs/engine.md.
//
// Device (worker/worker_session.h does the set-up, as for every worker program): trainer.accelerator
// (cpu, gpu, auto), or --device which overrides it, resolved by ops::select_device: a GPU run puts
// rank r of a node on CUDA device r (SLURM_LOCALID / LOCAL_RANK), with its CudaContext, caching
// allocator, parameters, gradients, optimizer state and activations there; batches are copied from
// the host per micro-batch and checkpoints go through host memory.
// The device's peak (ops/peak_throughput.h) turns model TFLOP/s into the MFU of the step line.
//
// Parallel runs: every rank is one process started by srun (or the local executor, which sets the
// same variables). The environment is read here and nowhere else: comm/rendezvous.h turns
// SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID / SLURM_JOB_NODELIST (or RANK / WORLD_SIZE /
// MASTER_ADDR / MASTER_PORT) into the rank, the world and the master; the port is run.master_port
// when the config sets it. Ranks meet through a TCP store on the master (or --rendezvous file: a
// directory under the results dir) and talk over gloo on CPUs, NCCL on GPUs (on the compute
// stream). The grid is tp x pp x dp from the config (comm/process_grid.h); docs/parallel.md.

#include <csignal>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/config/worker_config.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/export/nemo.h"
#include "bignlp/finetune/fine_tuning.h"
#include "bignlp/train/config_binding.h"
#include "bignlp/train/trainer.h"
#include "bignlp/tune/prompt_learning.h"
#include "bignlp/worker/worker_session.h"

namespace {

// Set by the signal handler, polled by the trainer after every step. Only main() sees it.
std::atomic<int> g_stop_requested{0};

extern "C" void request_stop(int signal) { g_stop_requested.store(signal); }

/// The command line: the saved stage config and its overrides, plus the flags below.
struct TrainArgs {
  bignlp::config::WorkerConfigArgs config;
  int threads = 0;
  std::string level = "info";
  std::string backend = "auto";
  std::string rendezvous = "tcp";
  std::string device;
  std::string stage = "training";
};

/// Parses argv into `out`; returns the exit code when the program should stop (--help, bad flags).
std::optional<int> parse_args(int argc, char** argv, TrainArgs& out) {
  std::vector<std::string> args(argv + 1, argv + argc);
  out.config = bignlp::config::extract_worker_config_args(args);
  CLI::App app{"bignlp-train: GPT pre-training from a training stage config"};
  app.add_option("--threads", out.threads, "CPU threads for the CPU ops (0: all)");
  app.add_option("--device", out.device, "cpu, cuda (gpu) or auto; overrides trainer.accelerator")
      ->check(CLI::IsMember({"cpu", "cuda", "gpu", "auto"}));
  app.add_option("--log-level", out.level, "trace, debug, info, warn, error");
  app.add_option("--stage", out.stage, "the launcher stage this run belongs to (training, fine_tuning, prompt_learning)")
      ->check(CLI::IsMember({"training", "fine_tuning", "prompt_learning"}));
  app.add_option("--comm-backend", out.backend, "auto (gloo on CPUs, nccl on GPUs), gloo or nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  app.add_option("--rendezvous", out.rendezvous,
                 "tcp: a store served by rank 0 on the master; file: files under <results>/.rendezvous-<job>")
      ->check(CLI::IsMember({"tcp", "file"}));
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

void check_stage(const std::string& stage) {
  if (stage != "training" && stage != "fine_tuning" && stage != "prompt_learning")
    throw bignlp::ConfigError(fmt::format(
        "--stage {}: the {} stage is not built yet; bignlp-train runs GPT pre-training (the training stage) only "
        "(README, Status)",
        stage, stage == "fine_tuning" ? "fine-tuning" : "prompt-learning"));
}

/// What the set-up of this rank takes from the command line and the training config.
bignlp::worker::WorkerOptions worker_options(const TrainArgs& args, const bignlp::train::TrainingConfig& tc,
                                             std::optional<int> master_port) {
  bignlp::worker::WorkerOptions o;
  o.device = tc.accelerator;
  o.device_flag = args.device;
  o.cpu_threads = args.threads;
  o.comm_backend = bignlp::worker::parse_comm_backend(args.backend);
  o.rendezvous = bignlp::worker::parse_rendezvous_kind(args.rendezvous);
  o.rendezvous_root = tc.exp_manager.explicit_log_dir;
  o.master_port = master_port.value_or(0);
  o.expected_world = bignlp::worker::ExpectedWorld{tc.num_nodes, tc.devices};
  o.tensor_model_parallel_size = tc.tensor_model_parallel_size();
  o.pipeline_model_parallel_size = tc.pipeline_model_parallel_size;
  return o;
}

void install_signal_handlers() {
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);
  // A peer that dies closes its sockets: the collective waiting on it must fail with an error
  // naming the rank (EPIPE from gloo), not kill this process with SIGPIPE and no message.
  std::signal(SIGPIPE, SIG_IGN);
}

/// The device's peak turns model TFLOP/s into MFU (ops/peak_throughput.h); says which it is.
void use_device_peak(const bignlp::worker::WorkerSession& session, bignlp::train::TrainingConfig& tc) {
  const std::optional<bignlp::ops::PeakThroughput> peak = session.runtime().peak(tc.model.compute_dtype());
  if (peak) {
    tc.peak_tflops_per_device = peak->tflops;
    session.log().info("device {}; MFU against {:g} TFLOP/s ({})", session.runtime().describe(), peak->tflops,
                       peak->description);
  } else if (session.context().device.is_cuda()) {
    session.log().info("device {}; no MFU: its peak is not in bignlp's table (ops/peak_throughput.h)",
                       session.runtime().describe());
  }
}

/// WANDB_MODE / WANDB_PROJECT / WANDB_ENTITY as W&B's client reads them (the launcher passes the job's
/// environment, WANDB_API_KEY from wandb_api_key_file included). The run is always written
/// offline: disabled turns it off, any other mode is said once.
void apply_wandb_environment(bignlp::train::TrainingConfig& tc, const bignlp::Logger& log) {
  auto& w = tc.exp_manager.wandb;
  if (!w) return;
  const char* mode = std::getenv("WANDB_MODE");
  const std::string m = mode != nullptr ? mode : "";
  if (m == "disabled") {
    log.info("W&B: WANDB_MODE=disabled: exp_manager.create_wandb_logger writes no run");
    w.reset();
    return;
  }
  if (!m.empty() && m != "offline" && m != "dryrun" && m != "online" && m != "run")
    throw bignlp::ConfigError(fmt::format("WANDB_MODE is '{}': expected online, offline, dryrun or disabled", m));
  if (w->project.empty())
    if (const char* p = std::getenv("WANDB_PROJECT")) w->project = p;
  if (w->entity.empty())
    if (const char* e = std::getenv("WANDB_ENTITY")) w->entity = e;
  if (m == "online" || m == "run" || m.empty())
    log.info("W&B: the run is written offline (compute nodes need no internet); `wandb sync` uploads it{}",
             std::getenv("WANDB_API_KEY") != nullptr ? " (WANDB_API_KEY is set in this job's environment)" : "");
}

/// exp_manager.checkpoint_callback_params.save_nemo_on_train_end / always_save_nemo:
/// <explicit_log_dir>/checkpoints/<exp_manager.name>.nemo from the saved checkpoint (export/nemo.h).
void write_nemo_files(bignlp::train::Trainer& trainer, const bignlp::train::TrainingConfig& tc, const bignlp::Logger& log) {
  const auto& em = tc.exp_manager;
  if (!em.save_nemo_on_train_end && !em.always_save_nemo) return;
  const std::filesystem::path nemo = em.explicit_log_dir / "checkpoints" / (em.name + ".nemo");
  const bool on_save = em.always_save_nemo, at_end = em.save_nemo_on_train_end;
  auto written = std::make_shared<std::filesystem::path>();  // the checkpoint the .nemo holds now
  trainer.set_checkpoint_callback([nemo, on_save, at_end, log, written](const std::filesystem::path& ckpt, bool train_end) {
    if (train_end ? !at_end : !on_save) return;
    if (*written == ckpt) return;  // the final save already wrote it
    bignlp::exporting::NemoExportOptions opt;
    opt.overwrite = true;
    bignlp::exporting::export_nemo(ckpt, nemo, opt, log);
    *written = ckpt;
  });
}

/// The fine_tuning stage (finetune/fine_tuning.h): T5/mT5 from a pre-trained checkpoint.
int fine_tune(const TrainArgs& args, const bignlp::config::ConfigView& cfg, bignlp::Logger log) {
  const std::optional<int> master_port = cfg.find<int>("run.master_port");
  bignlp::finetune::FineTuningConfig fc = bignlp::finetune::bind_fine_tuning_config(cfg);
  fc.training.cpu_threads = args.threads;
  install_signal_handlers();
  const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(
      worker_options(args, fc.training, master_port), bignlp::process_environment(), log);
  log = session.log();
  use_device_peak(session, fc.training);
  const bignlp::train::TrainResult r = bignlp::finetune::run_fine_tuning(
      std::move(fc), log, session.context(), session.parallel_context(), &g_stop_requested, stdout);
  session.barrier();
  log.info("fine-tuning finished at step {} ({} samples); last checkpoint {}", r.global_step, r.consumed_samples,
           r.last_checkpoint.string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bignlp::Logger log("bignlp-train");
  try {
    TrainArgs args;
    if (const std::optional<int> exit_code = parse_args(argc, argv, args)) return *exit_code;
    log = log.with_level(bignlp::parse_log_level(args.level));
    check_stage(args.stage);
    const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(args.config);
    const bignlp::config::ConfigView cfg(root);
    if (args.stage == "fine_tuning") return fine_tune(args, cfg, log);
    const std::optional<int> master_port = cfg.find<int>("run.master_port");
    if (args.stage == "prompt_learning") {
      // Prompt learning (tune/prompt_learning.h): the same trainer around a frozen base model.
      bignlp::tune::PromptLearningJob job = bignlp::tune::bind_prompt_learning(cfg);
      job.training.cpu_threads = args.threads;
      install_signal_handlers();
      const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(
          worker_options(args, job.training, master_port), bignlp::process_environment(), log);
      log = session.log();
      const bignlp::tune::PromptLearningResult r = bignlp::tune::run_prompt_learning(
          job, session.context(), session.parallel_context(), log, &g_stop_requested, stdout);
      session.barrier();
      log.info("finished at step {}; prompt-learnt model {}", r.train.global_step, r.nemo.string());
      return 0;
    }
    bignlp::train::TrainingConfig tc = bignlp::train::bind_training_config(cfg);
    tc.cpu_threads = args.threads;
    install_signal_handlers();

    const bignlp::worker::WorkerSession session = bignlp::worker::start_worker(
        worker_options(args, tc, master_port), bignlp::process_environment(), log);
    log = session.log();
    const bignlp::ops::OpContext& ctx = session.context();
    use_device_peak(session, tc);

    apply_wandb_environment(tc, log);
    bignlp::train::Trainer trainer(tc, log, ctx, stdout);
    write_nemo_files(trainer, tc, log);
    trainer.set_stop_flag(&g_stop_requested);
    trainer.set_parallel(session.parallel_context());
    const bignlp::train::TrainResult r = trainer.fit();
    session.barrier();  // no rank tears the connections down while another still uses them
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
