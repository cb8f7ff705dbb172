// Rendezvous: from the launcher's environment to a connected world communicator.
//
// Slurm's srun (and the local executor, which sets the same variables) tells each task who it is:
//   SLURM_PROCID  global rank        SLURM_NTASKS  world size        SLURM_LOCALID  rank on the node
//   SLURM_NNODES  node count         SLURM_JOB_ID  job id            SLURM_JOB_NODELIST  e.g. "gpu[01-04]"
// The master is the first host of the node list (where SLURM_PROCID 0 runs). Without Slurm the
// torchrun names RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR are accepted; MASTER_ADDR and
// MASTER_PORT override the derived master. Nothing here reads the process environment: the program
// passes it in as a map (the one place env vars are read), and parse_distributed_env is pure.
//
// connect_world() then creates the store (a TcpStore served by rank 0 on master_addr:port, bound
// to that address and open only to connections presenting BIGNLP_STORE_SECRET, or a FileStore in
// a shared directory) and the world communicator of the chosen backend. Errors name
// the rank and what it was waiting for.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "bignlp/comm/communicator.h"
#include "bignlp/comm/store.h"

namespace bignlp::comm {

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int num_nodes = 1;
  std::string job_id;                    ///< "" outside a job
  std::string master_addr = "127.0.0.1";
  int master_port = 0;                   ///< 0: not known yet (see resolve_master_port)
  std::string node_name;                 ///< this node (SLURMD_NODENAME), "" when unknown
  /// The job's TCP-store secret (BIGNLP_STORE_SECRET, set by the launcher; never logged).
  std::string store_secret;
  std::string source = "default";        ///< "slurm", "torchrun" or "default" (single process)
};

/// Parses the variables above from `env`. Throws ConfigError naming the variable for a value that
/// is not an integer or out of range (e.g. SLURM_PROCID >= SLURM_NTASKS).
DistributedEnv parse_distributed_env(const std::map<std::string, std::string>& env);

/// The first host of a Slurm host list: "gpu[01-04,07],login" -> "gpu01", "a,b" -> "a".
std::string first_host(std::string_view nodelist);

/// The port to use: `configured` when > 0, else MASTER_PORT from the environment (already in
/// env.master_port), else 20000 + (job id mod 20000) so concurrent jobs on a node differ, else 29500.
int resolve_master_port(const DistributedEnv& env, int configured);

enum class Backend { kGloo, kNccl };

/// "gloo" / "nccl"; parse accepts those (and "auto" is the caller's to resolve). Throws ConfigError.
const char* backend_name(Backend b);
Backend parse_backend(std::string_view name);

struct RendezvousOptions {
  Backend backend = Backend::kGloo;
  /// Empty: TcpStore on master_addr:master_port. Otherwise a FileStore in this directory
  /// (shared by all ranks; use a fresh one per job).
  std::filesystem::path store_dir;
  /// Address this rank's gloo pairs listen on; empty: 127.0.0.1 on one node, else node_name.
  std::string hostname;
  /// How long ranks wait for each other while connecting.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  /// How long a collective may wait for the other ranks once connected (NCCL/torch default 30 min:
  /// a rank may be busy writing a checkpoint or validating).
  std::chrono::milliseconds collective_timeout = kDefaultCommTimeout;
  int cuda_device = 0;  ///< NCCL: the GPU of this rank (usually local_rank)
  /// NCCL: the cudaStream_t collectives are enqueued on: the compute stream, so each is ordered
  /// after the kernels that produce its input (null: a stream of the communicator's own).
  void* cuda_stream = nullptr;
};

/// A connected world: the store (kept alive for later group creation) and the communicator.
struct World {
  std::unique_ptr<Store> store;
  std::unique_ptr<Communicator> communicator;
  World() = default;
  World(World&&) noexcept = default;
  World& operator=(World&&) noexcept = default;
  ~World();
};

/// Connects this rank to the others (collective over the world). A world of one process needs no
/// store and no network for gloo.
World connect_world(const DistributedEnv& env, const RendezvousOptions& options);

}  // namespace bignlp::comm
