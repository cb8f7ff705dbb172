// bignlp-train: GPT pre-training from a saved training stage config.
//
//   bignlp-train --config-path DIR --config-name NAME.yaml [OVERRIDE ...] [--threads N] [--device cpu|cuda|auto]
// The launcher writes the stage config (trainer.*, model.*, exp_manager.*, run.*) and runs this.
// SIGTERM and SIGUSR1 (Slurm's pre-timeout signal) finish the current step, save a checkpoint and
// exit 0. Index: train/config_binding.h (keys), train/trainer.h (loop), checkpoint/checkpoint.h,
// train/metrics.h (stdout line), docs/engine.md.
//
// Device: trainer.accelerator (cpu, gpu, auto), or --device which overrides it, resolved by
// ops::select_device: a GPU run puts rank r of a node on CUDA device r (SLURM_LOCALID / LOCAL_RANK),
// with its CudaContext, caching allocator, parameters, gradients, optimizer state and activations
// there; batches are copied from the host per micro-batch and checkpoints go through host memory.
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
#include <atomic>
#include <map>
#include <iostream>

#include "bignlp/comm/parallel_groups.h"
#include "bignlp/comm/rendezvous.h"
#include "bignlp/config/worker_config.h"
#include "bignlp/core/environment.h"
#include "bignlp/core/error.h"
#include "bignlp/core/logging.h"
#include "bignlp/ops/device_runtime.h"
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
    std::string backend = "auto";
    std::string rendezvous = "tcp";
    std::string device;
    app.add_option("--threads", threads, "CPU threads for the CPU ops (0: all)");
    app.add_option("--device", device, "cpu, cuda (gpu) or auto; overrides trainer.accelerator")
        ->check(CLI::IsMember({"cpu", "cuda", "gpu", "auto"}));
    app.add_option("--log-level", level, "trace, debug, info, warn, error");
    std::string stage = "training";
    app.add_option("--stage", stage, "the launcher stage this run belongs to (training; fine_tuning and prompt_learning are not built)")
        ->check(CLI::IsMember({"training", "fine_tuning", "prompt_learning"}));
    app.add_option("--comm-backend", backend, "auto (gloo on CPUs, nccl on GPUs), gloo or nccl")
        ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
    app.add_option("--rendezvous", rendezvous,
                   "tcp: a store served by rank 0 on the master; file: files under <results>/.rendezvous-<job>")
        ->check(CLI::IsMember({"tcp", "file"}));
    std::reverse(args.begin(), args.end());
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    log = log.with_level(bignlp::parse_log_level(level));
    if (stage != "training")
      throw bignlp::ConfigError(fmt::format(
          "--stage {}: the {} stage is not built yet; bignlp-train runs GPT pre-training (the training stage) only "
          "(README, Status)",
          stage, stage == "fine_tuning" ? "fine-tuning" : "prompt-learning"));
    const bignlp::config::ConfigNode root = bignlp::config::load_worker_config(cfg_args);
    const bignlp::config::ConfigView cfg(root);
    const std::optional<int> master_port = cfg.find<int>("run.master_port");
    bignlp::train::TrainingConfig tc = bignlp::train::bind_training_config(cfg);
    tc.cpu_threads = threads;
    std::signal(SIGTERM, request_stop);
    std::signal(SIGUSR1, request_stop);
    // A peer that dies closes its sockets: the collective waiting on it must fail with an error
    // naming the rank (EPIPE from gloo), not kill this process with SIGPIPE and no message.
    std::signal(SIGPIPE, SIG_IGN);

    // Who we are, from the launcher's environment; the config says how many ranks to expect.
    const std::map<std::string, std::string> env_vars = bignlp::process_environment();
    bignlp::comm::DistributedEnv env = bignlp::comm::parse_distributed_env(env_vars);
    if (env.world_size != tc.world_size())
      throw bignlp::ConfigError(fmt::format(
          "trainer.num_nodes x trainer.devices = {} x {} = {} ranks, but the launcher started {} ({}); start the job "
          "with that many tasks (srun --ntasks, or the launcher) or change the config",
          tc.num_nodes, tc.devices, tc.world_size(), env.world_size,
          env.source == "slurm" ? "SLURM_NTASKS" : env.source == "torchrun" ? "WORLD_SIZE" : "a single process"));

    // Where this rank computes: --device, else trainer.accelerator.
    bignlp::ops::DeviceRequest request = tc.accelerator;
    if (!device.empty()) {
      request.kind = bignlp::ops::parse_device_kind(device, "--device");
      request.text = device;
      request.origin = "--device";
      request.cpu_fix = "--device cpu";
    }
    const bignlp::Device dev = bignlp::ops::select_device(request, bignlp::ops::probe_devices(env_vars), env.local_rank);
    bignlp::ops::DeviceRuntimeOptions dro;
    dro.cpu_threads = threads;
    const bignlp::ops::DeviceRuntime runtime(dev, env_vars, dro);
    const bignlp::ops::OpContext& ctx = runtime.context();
    const std::optional<bignlp::ops::PeakThroughput> peak = runtime.peak(tc.model.compute_dtype());
    if (peak) tc.peak_tflops_per_device = peak->tflops;

    env.master_port = bignlp::comm::resolve_master_port(env, master_port.value_or(0));
    bignlp::comm::RendezvousOptions ro;
    // One rank exchanges nothing: the single-rank communicator, whatever the device.
    ro.backend = backend == "auto" ? (dev.is_cuda() && env.world_size > 1 ? bignlp::comm::Backend::kNccl
                                                                            : bignlp::comm::Backend::kGloo)
                                   : bignlp::comm::parse_backend(backend);
    if (ro.backend == bignlp::comm::Backend::kNccl && !dev.is_cuda())
      throw bignlp::ConfigError(fmt::format("--comm-backend nccl moves GPU memory, but this rank computes on the CPU ({}: "
                                            "'{}'); use --comm-backend gloo (or auto), or train on GPUs",
                                            request.origin, request.text));
    if (ro.backend == bignlp::comm::Backend::kGloo && dev.is_cuda() && env.world_size > 1)
      throw bignlp::ConfigError("--comm-backend gloo moves host memory, but the ranks train on GPUs; use "
                                "--comm-backend nccl (or auto)");
    ro.cuda_device = dev.index;
    ro.cuda_stream = runtime.cuda_stream();  // collectives are ordered with the kernels around them
    if (rendezvous == "file")
      ro.store_dir = tc.exp_manager.explicit_log_dir / fmt::format(".rendezvous-{}", env.job_id.empty() ? "0" : env.job_id);
    bignlp::comm::World world = bignlp::comm::connect_world(env, ro);
    const bignlp::comm::ProcessGrid grid(env.world_size, env.rank, tc.tensor_model_parallel_size,
                                         tc.pipeline_model_parallel_size);
    bignlp::comm::ParallelGroups groups = bignlp::comm::ParallelGroups::create(*world.communicator, grid);
    bignlp::parallel::ParallelOptions po;
    if (ro.backend == bignlp::comm::Backend::kNccl && grid.tp_size() > 1) {
      // Megatron's convention: the overlapped TP all-reduce relies on the GPU starting kernels in
      // issue order, which CUDA guarantees only with one hardware queue.
      const auto it = env_vars.find("CUDA_DEVICE_MAX_CONNECTIONS");
      if (it == env_vars.end() || it->second != "1") {
        log.warn("CUDA_DEVICE_MAX_CONNECTIONS is not 1 (the launcher sets it for tensor parallelism): the "
                 "input-gradient all-reduce is not overlapped with the weight-gradient GEMM");
        po.async_tp_allreduce = false;
      }
    }
    log = log.with_rank(bignlp::RankInfo{grid.rank(), grid.tp_rank(), grid.pp_rank(), grid.dp_rank()});
    if (grid.world_size() > 1)
      log.info("rank {} of {} ({}) over {}", grid.rank(), grid.world_size(), grid.to_string(),
               world.communicator->backend());
    if (peak)
      log.info("device {}; MFU against {:g} TFLOP/s ({})", runtime.describe(), peak->tflops, peak->description);
    else if (dev.is_cuda())
      log.info("device {}; no MFU: its peak is not in bignlp's table (ops/peak_throughput.h)", runtime.describe());

    bignlp::train::Trainer trainer(tc, log, ctx, stdout);
    trainer.set_stop_flag(&g_stop_requested);
    trainer.set_parallel(bignlp::parallel::ParallelContext::from(groups, po));
    const bignlp::train::TrainResult r = trainer.fit();
    world.communicator->barrier();  // no rank tears the connections down while another still uses them
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
