// WorkerSession: what every worker program (bignlp-train, bignlp-evaluate, ...) sets up before its
// work, in one place: who this rank is, the device it computes on, the world it belongs to and its
// parallel groups, and the logger that names it.
//
//   env vars (main: process_environment()) --> comm::parse_distributed_env    rank, world, local rank
//   WorkerOptions.device / device_flag     --> ops::select_device            cpu or cuda:<local rank>
//                                          --> ops::DeviceRuntime            the OpContext every op takes
//   WorkerOptions.comm_backend             --> choose_backend                gloo (CPUs) / nccl (GPUs)
//   rendezvous, master port                --> comm::connect_world           the world communicator
//   tp, pp                                 --> comm::ProcessGrid, ParallelGroups, ParallelOptions
//                                          --> Logger::with_rank             "[rank r | tp t pp p dp d]"
// Programs keep their command line (CLI11 stays in src/cli) and read the environment once, in
// main(); they translate flags and config keys into WorkerOptions and pass the environment in.
// Errors are ConfigErrors naming the flag or key and the fix (bignlp-train's tests pin their text).
// Not handled: what a program does with its session (the trainer, the scorer), device peaks (MFU is
// the trainer's business) and signals.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bignlp/comm/parallel_groups.h"
#include "bignlp/comm/process_grid.h"
#include "bignlp/comm/rendezvous.h"
#include "bignlp/core/logging.h"
#include "bignlp/ops/device_runtime.h"
#include "bignlp/parallel/parallel_context.h"

namespace bignlp::worker {

/// --rendezvous: how the ranks find each other.
enum class RendezvousKind {
  kTcp,   ///< a TCP store served by rank 0 on the master
  kFile,  ///< files in <rendezvous_root>/.rendezvous-<job id> (a shared directory)
};

/// "tcp" or "file"; throws ConfigError otherwise.
RendezvousKind parse_rendezvous_kind(std::string_view text);

/// Which processes make up the world.
enum class WorldKind {
  /// Every task the launcher started (SLURM_* or torchrun variables): a rendezvous, then the grid.
  kLauncher,
  /// This process alone whatever the environment says (a tool that works per task): a one-rank
  /// world and grid; the local rank still picks the GPU, and the logger gets no rank prefix.
  kSingleProcess,
};

/// trainer.num_nodes x trainer.devices: how many ranks the config expects.
struct ExpectedWorld {
  int num_nodes = 1;
  int devices = 1;
};

struct WorkerOptions {
  WorldKind world = WorldKind::kLauncher;
  /// The device the config asks for (trainer.accelerator, with where it was written).
  ops::DeviceRequest device;
  /// --device as given (cpu, cuda, gpu, auto); empty: `device` stands. Overrides `device`.
  std::string device_flag;
  int cpu_threads = 0;     ///< OpenMP threads of the CPU ops (0: the OpenMP default)
  bool allow_tf32 = true;  ///< CUDA: fp32 GEMMs in TF32
  /// --comm-backend; nullopt: auto (gloo on CPUs or for one rank, nccl between GPUs).
  std::optional<comm::Backend> comm_backend;
  RendezvousKind rendezvous = RendezvousKind::kTcp;
  /// kFile: the directory that holds .rendezvous-<job id> (the run's results directory).
  std::filesystem::path rendezvous_root;
  /// run.master_port (0: MASTER_PORT, else derived from the job id; comm::resolve_master_port).
  int master_port = 0;
  /// The world the config expects; nullopt: whatever the launcher started.
  std::optional<ExpectedWorld> expected_world;
  int tensor_model_parallel_size = 1;
  int pipeline_model_parallel_size = 1;
};

/// "auto" -> nullopt, "gloo" / "nccl" -> that backend; throws ConfigError otherwise.
std::optional<comm::Backend> parse_comm_backend(std::string_view text);

/// The device request after the command line: `device_flag` (when not empty) replaces `configured`
/// and is named "--device" in errors. Throws ConfigError for a flag that is not a device.
ops::DeviceRequest device_request(const ops::DeviceRequest& configured, std::string_view device_flag);

/// Throws ConfigError when the launcher started another number of ranks than `expected`, naming
/// both and the variable that said so (SLURM_NTASKS, WORLD_SIZE).
void check_world_size(const comm::DistributedEnv& env, const ExpectedWorld& expected);

/// The backend for ranks computing on `device`: `requested`, or auto. Throws ConfigError when the
/// backend cannot move this device's memory (nccl on the CPU; gloo between GPU ranks). `request`
/// names where the device came from.
comm::Backend choose_backend(std::optional<comm::Backend> requested, const Device& device, int world_size,
                             const ops::DeviceRequest& request);

/// The parallel switches the environment decides: the overlapped TP all-reduce on NCCL needs
/// CUDA_DEVICE_MAX_CONNECTIONS=1 (GPU kernels start in issue order); without it a warning on `log`
/// and async_tp_allreduce off.
parallel::ParallelOptions parallel_options(comm::Backend backend, const comm::ProcessGrid& grid,
                                           const std::map<std::string, std::string>& env, const Logger& log);

/// One rank's set-up; owns the device runtime, the world and the groups, which everything built on
/// them (models, trainers) must not outlive. Movable, not copyable.
class WorkerSession {
 public:
  WorkerSession(WorkerSession&&) noexcept;
  WorkerSession& operator=(WorkerSession&&) = delete;
  WorkerSession(const WorkerSession&) = delete;
  WorkerSession& operator=(const WorkerSession&) = delete;
  ~WorkerSession();

  /// Who this process is, as the launcher said (master_port resolved).
  const comm::DistributedEnv& env() const { return env_; }
  const ops::DeviceRuntime& runtime() const { return *runtime_; }
  /// The context every op of the program takes.
  const ops::OpContext& context() const { return runtime_->context(); }
  const ops::DeviceRequest& device_request() const { return request_; }
  comm::Backend backend() const { return backend_; }
  comm::Communicator& world() const { return *world_.communicator; }
  const comm::ProcessGrid& grid() const { return groups_.grid; }
  const comm::ParallelGroups& groups() const { return groups_; }
  const parallel::ParallelOptions& parallel_options() const { return parallel_options_; }
  /// What a model or trainer of this rank takes (communicators owned by this session).
  parallel::ParallelContext parallel_context() const;
  /// The logger with this rank's prefix (ranks other than 0 silenced).
  const Logger& log() const { return log_; }
  /// Waits for every rank of the world; call before returning from main so that no rank tears its
  /// connections down while another still uses them.
  void barrier() const;

 private:
  WorkerSession();
  friend WorkerSession start_worker(const WorkerOptions&, const std::map<std::string, std::string>&, const Logger&);

  comm::DistributedEnv env_;
  ops::DeviceRequest request_;
  std::unique_ptr<ops::DeviceRuntime> runtime_;  // destroyed last: the communicators may use its stream
  comm::Backend backend_ = comm::Backend::kGloo;
  comm::World world_;
  comm::ParallelGroups groups_;  // points into world_
  parallel::ParallelOptions parallel_options_;
  Logger log_;
};

/// Sets this rank up, in this order: parse the environment `env`; check the world size; choose and
/// open the device; choose the backend; meet the other ranks (collective over the world); build the
/// grid, the groups and the parallel options; tag `log` with the rank. Throws ConfigError for
/// impossible requests (messages name the flag or key and the fix), RuntimeError when the
/// rendezvous or the device fails.
WorkerSession start_worker(const WorkerOptions& options, const std::map<std::string, std::string>& env,
                           const Logger& log);

}  // namespace bignlp::worker
