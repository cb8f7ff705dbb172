#include "bignlp/comm/rendezvous.h"

#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <random>

#include "bignlp/comm/file_store.h"
#include "bignlp/comm/gloo_communicator.h"
#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/tcp_store.h"
#include "bignlp/core/check.h"
#include "bignlp/core/strings.h"
#if defined(BIGNLP_WITH_NCCL)
#include "bignlp/comm/nccl_communicator.h"
#endif

namespace bignlp::comm {

namespace {

const std::string* find(const std::map<std::string, std::string>& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

int parse_int(const std::string& value, const char* key, int min) {
  int v = 0;
  const auto t = trim(value);
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || v < min) {
    throw ConfigError(fmt::format("environment variable {}='{}' is not an integer >= {}", key, value, min));
  }
  return v;
}

}  // namespace

std::string first_host(std::string_view nodelist) {
  // Up to the first comma outside brackets; a bracket range takes its first number.
  std::string host;
  int depth = 0;
  std::size_t i = 0;
  for (; i < nodelist.size(); ++i) {
    const char c = nodelist[i];
    if (c == '[') {
      ++depth;
      // First element of the range list: digits up to '-', ',' or ']'.
      std::size_t j = i + 1;
      while (j < nodelist.size() && nodelist[j] != '-' && nodelist[j] != ',' && nodelist[j] != ']') host += nodelist[j++];
      while (j < nodelist.size() && nodelist[j] != ']') ++j;
      i = j;
      --depth;
      continue;
    }
    if (c == ',' && depth == 0) break;
    host += c;
  }
  return std::string(trim(host));
}

DistributedEnv parse_distributed_env(const std::map<std::string, std::string>& env) {
  DistributedEnv out;
  if (const auto* procid = find(env, "SLURM_PROCID")) {
    out.source = "slurm";
    out.rank = parse_int(*procid, "SLURM_PROCID", 0);
    if (const auto* n = find(env, "SLURM_NTASKS")) {
      out.world_size = parse_int(*n, "SLURM_NTASKS", 1);
    } else if (const auto* n2 = find(env, "SLURM_NPROCS")) {
      out.world_size = parse_int(*n2, "SLURM_NPROCS", 1);
    }
    if (const auto* l = find(env, "SLURM_LOCALID")) out.local_rank = parse_int(*l, "SLURM_LOCALID", 0);
    if (const auto* nn = find(env, "SLURM_NNODES")) out.num_nodes = parse_int(*nn, "SLURM_NNODES", 1);
    if (const auto* j = find(env, "SLURM_JOB_ID")) out.job_id = *j;
    const auto* list = find(env, "SLURM_JOB_NODELIST");
    if (!list) list = find(env, "SLURM_NODELIST");
    if (list) out.master_addr = first_host(*list);
    if (const auto* node = find(env, "SLURMD_NODENAME")) out.node_name = *node;
    if (out.rank >= out.world_size) {
      throw ConfigError(fmt::format("environment: SLURM_PROCID={} is not below SLURM_NTASKS={}", out.rank, out.world_size));
    }
  } else if (const auto* rank = find(env, "RANK")) {
    out.source = "torchrun";
    out.rank = parse_int(*rank, "RANK", 0);
    if (const auto* n = find(env, "WORLD_SIZE")) out.world_size = parse_int(*n, "WORLD_SIZE", 1);
    if (const auto* l = find(env, "LOCAL_RANK")) out.local_rank = parse_int(*l, "LOCAL_RANK", 0);
    if (out.rank >= out.world_size) {
      throw ConfigError(fmt::format("environment: RANK={} is not below WORLD_SIZE={}", out.rank, out.world_size));
    }
  }
  if (const auto* addr = find(env, "MASTER_ADDR")) out.master_addr = *addr;
  if (const auto* port = find(env, "MASTER_PORT")) out.master_port = parse_int(*port, "MASTER_PORT", 1);
  if (out.master_addr.empty()) out.master_addr = "127.0.0.1";
  if (const auto* secret = find(env, kStoreSecretEnv)) out.store_secret = *secret;
  return out;
}

int resolve_master_port(const DistributedEnv& env, int configured) {
  if (configured > 0) return configured;
  if (env.master_port > 0) return env.master_port;
  if (!env.job_id.empty()) {
    std::uint64_t id = 0;
    for (char c : env.job_id) {
      if (std::isdigit(static_cast<unsigned char>(c))) id = id * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return 20000 + static_cast<int>(id % 20000);
  }
  return 29500;
}

const char* backend_name(Backend b) { return b == Backend::kNccl ? "nccl" : "gloo"; }

Backend parse_backend(std::string_view name) {
  const std::string n = to_lower(trim(name));
  if (n == "gloo") return Backend::kGloo;
  if (n == "nccl") return Backend::kNccl;
  throw ConfigError(fmt::format("unknown communication backend '{}': expected gloo or nccl", name));
}

World::~World() = default;

World connect_world(const DistributedEnv& env, const RendezvousOptions& options) {
  World w;
  if (env.world_size == 1 && options.backend == Backend::kGloo) {
    w.communicator = make_single_rank_communicator();
    w.communicator->set_timeout(options.collective_timeout);
    return w;
  }
  if (!options.store_dir.empty()) {
    w.store = std::make_unique<FileStore>(options.store_dir);
  } else {
    TcpStoreOptions so;
    so.host = env.master_addr;
    so.port = env.master_port;
    so.is_server = env.rank == 0;
    so.connect_timeout = options.timeout;
    so.secret = env.store_secret;
    if (so.secret.empty() && env.world_size == 1) {
      // Only this process connects: a token of its own keeps everyone else out.
      std::random_device rd;
      for (int i = 0; i < 4; ++i) so.secret += fmt::format("{:08x}", static_cast<std::uint32_t>(rd()));
    }
    if (so.secret.empty()) {
      throw ConfigError(fmt::format(
          "rank {} of {}: {} is not set: the TCP rendezvous store accepts only connections that present the "
          "job's secret. bignlp sets it for the jobs it renders or runs; when starting ranks yourself, export "
          "the same random token to every rank (e.g. {}=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n'))",
          env.rank, env.world_size, kStoreSecretEnv, kStoreSecretEnv));
    }
    BIGNLP_CHECK(env.master_port > 0, "rank {}: no master port for the TCP store (resolve_master_port)", env.rank);
    try {
      w.store = std::make_unique<TcpStore>(so);
    } catch (const std::exception& e) {
      throw RuntimeError(fmt::format("rank {} of {}: rendezvous failed: {}", env.rank, env.world_size, e.what()));
    }
  }
  if (options.backend == Backend::kGloo) {
    GlooOptions go;
    go.timeout = options.timeout;
    go.hostname = options.hostname;
    if (go.hostname.empty()) {
      if (env.num_nodes <= 1) {
        go.hostname = "127.0.0.1";
      } else if (!env.node_name.empty()) {
        go.hostname = env.node_name;
      } else {
        char buf[256] = {};
        ::gethostname(buf, sizeof buf - 1);
        go.hostname = buf;
      }
    }
    PrefixStore prefixed(*w.store, "gloo");
    w.communicator = make_gloo_communicator(prefixed, env.rank, env.world_size, go);
  } else {
#if defined(BIGNLP_WITH_NCCL)
    NcclOptions no;
    no.device = options.cuda_device;
    no.stream = options.cuda_stream;
    no.timeout = options.timeout;
    w.communicator = make_nccl_communicator(*w.store, env.rank, env.world_size, no);
#else
    throw ConfigError("backend nccl was requested but this build has no NCCL (configure with CUDA and NCCL, "
                      "BIGNLP_NCCL=ON); use gloo on CPUs");
#endif
  }
  w.communicator->set_timeout(options.collective_timeout);
  return w;
}

}  // namespace bignlp::comm
