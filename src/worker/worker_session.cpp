#include "bignlp/worker/worker_session.h"

#include <fmt/format.h>

#include "bignlp/core/error.h"

namespace bignlp::worker {

RendezvousKind parse_rendezvous_kind(std::string_view text) {
  if (text == "tcp") return RendezvousKind::kTcp;
  if (text == "file") return RendezvousKind::kFile;
  throw ConfigError(fmt::format("--rendezvous: '{}' is not a rendezvous; expected tcp or file", text));
}

std::optional<comm::Backend> parse_comm_backend(std::string_view text) {
  if (text == "auto") return std::nullopt;
  return comm::parse_backend(text);
}

ops::DeviceRequest device_request(const ops::DeviceRequest& configured, std::string_view device_flag) {
  if (device_flag.empty()) return configured;
  ops::DeviceRequest request;
  request.kind = ops::parse_device_kind(device_flag, "--device");
  request.text = std::string(device_flag);
  request.origin = "--device";
  request.cpu_fix = "--device cpu";
  return request;
}

void check_world_size(const comm::DistributedEnv& env, const ExpectedWorld& expected) {
  const int ranks = expected.num_nodes * expected.devices;
  if (env.world_size == ranks) return;
  throw ConfigError(fmt::format(
      "trainer.num_nodes x trainer.devices = {} x {} = {} ranks, but the launcher started {} ({}); start the job "
      "with that many tasks (srun --ntasks, or the launcher) or change the config",
      expected.num_nodes, expected.devices, ranks, env.world_size,
      env.source == "slurm" ? "SLURM_NTASKS" : env.source == "torchrun" ? "WORLD_SIZE" : "a single process"));
}

comm::Backend choose_backend(std::optional<comm::Backend> requested, const Device& device, int world_size,
                             const ops::DeviceRequest& request) {
  // One rank exchanges nothing: the single-rank communicator, whatever the device.
  const comm::Backend backend =
      requested.value_or(device.is_cuda() && world_size > 1 ? comm::Backend::kNccl : comm::Backend::kGloo);
  if (backend == comm::Backend::kNccl && !device.is_cuda())
    throw ConfigError(fmt::format("--comm-backend nccl moves GPU memory, but this rank computes on the CPU ({}: "
                                  "'{}'); use --comm-backend gloo (or auto), or train on GPUs",
                                  request.origin, request.text));
  if (backend == comm::Backend::kGloo && device.is_cuda() && world_size > 1)
    throw ConfigError("--comm-backend gloo moves host memory, but the ranks train on GPUs; use "
                      "--comm-backend nccl (or auto)");
  return backend;
}

parallel::ParallelOptions parallel_options(comm::Backend backend, const comm::ProcessGrid& grid,
                                           const std::map<std::string, std::string>& env, const Logger& log) {
  parallel::ParallelOptions po;
  if (backend == comm::Backend::kNccl && grid.tp_size() > 1) {
    // Megatron's convention: the overlapped TP all-reduce relies on the GPU starting kernels in
    // issue order, which CUDA guarantees only with one hardware queue.
    const auto it = env.find("CUDA_DEVICE_MAX_CONNECTIONS");
    if (it == env.end() || it->second != "1") {
      log.warn("CUDA_DEVICE_MAX_CONNECTIONS is not 1 (the launcher sets it for tensor parallelism): the "
               "input-gradient all-reduce is not overlapped with the weight-gradient GEMM");
      po.async_tp_allreduce = false;
    }
  }
  return po;
}

WorkerSession::WorkerSession() = default;
WorkerSession::WorkerSession(WorkerSession&&) noexcept = default;
WorkerSession::~WorkerSession() = default;

parallel::ParallelContext WorkerSession::parallel_context() const {
  return parallel::ParallelContext::from(groups_, parallel_options_);
}

void WorkerSession::barrier() const { world_.communicator->barrier(); }

WorkerSession start_worker(const WorkerOptions& options, const std::map<std::string, std::string>& env,
                           const Logger& log) {
  WorkerSession s;
  // Who we are, from the launcher's environment; the config says how many ranks to expect.
  s.env_ = comm::parse_distributed_env(env);
  if (options.world == WorldKind::kSingleProcess) {
    s.env_.rank = 0;
    s.env_.world_size = 1;
  } else if (options.expected_world) {
    check_world_size(s.env_, *options.expected_world);
  }

  // Where this rank computes: the command line's --device, else the config's request.
  s.request_ = device_request(options.device, options.device_flag);
  const Device dev = ops::select_device(s.request_, ops::probe_devices(env), s.env_.local_rank);
  ops::DeviceRuntimeOptions dro;
  dro.cpu_threads = options.cpu_threads;
  dro.allow_tf32 = options.allow_tf32;
  s.runtime_ = std::make_unique<ops::DeviceRuntime>(dev, env, dro);

  // Meeting the other ranks.
  s.env_.master_port = comm::resolve_master_port(s.env_, options.master_port);
  s.backend_ = choose_backend(options.comm_backend, dev, s.env_.world_size, s.request_);
  comm::RendezvousOptions ro;
  ro.backend = s.backend_;
  ro.cuda_device = dev.index;
  ro.cuda_stream = s.runtime_->cuda_stream();  // collectives are ordered with the kernels around them
  if (options.rendezvous == RendezvousKind::kFile)
    ro.store_dir = options.rendezvous_root / fmt::format(".rendezvous-{}", s.env_.job_id.empty() ? "0" : s.env_.job_id);
  s.world_ = comm::connect_world(s.env_, ro);

  const comm::ProcessGrid grid(s.env_.world_size, s.env_.rank, options.tensor_model_parallel_size,
                               options.pipeline_model_parallel_size);
  s.groups_ = comm::ParallelGroups::create(*s.world_.communicator, grid);
  s.parallel_options_ = parallel_options(s.backend_, grid, env, log);
  s.log_ = options.world == WorldKind::kSingleProcess
               ? log
               : log.with_rank(RankInfo{grid.rank(), grid.tp_rank(), grid.pp_rank(), grid.dp_rank()});
  if (grid.world_size() > 1)
    s.log_.info("rank {} of {} ({}) over {}", grid.rank(), grid.world_size(), grid.to_string(),
                s.world_.communicator->backend());
  return s;
}

}  // namespace bignlp::worker
