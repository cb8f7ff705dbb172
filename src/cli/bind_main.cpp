// bignlp-bind: binds itself to this rank's share of the node's CPU cores (numa_mapping), then
// executes the worker, which keeps the binding (same process, see launch/numa.h).
//
//   bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true
//               --min-cores 1 --max-cores 8 -- bignlp-train --config-path D --config-name N
//
// The rank comes from --local-rank/--local-size, else from Slurm's SLURM_LOCALID and
// SLURM_NTASKS_PER_NODE (which the local executor and the BCP scripts set too), else from
// LOCAL_RANK/LOCAL_WORLD_SIZE. GPU locality follows CUDA_VISIBLE_DEVICES. Binding is a
// performance setting: when it cannot be done, a warning is printed and the worker runs unbound.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bignlp/core/error.h"
#include "bignlp/launch/numa.h"

namespace {

std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);  // "8(x2)" style values: the leading count
  if (end == v || n < 0) return std::nullopt;
  return static_cast<int>(n);
}

bool parse_bool(const std::string& s) {
  if (s == "true" || s == "True" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "False" || s == "0" || s == "no") return false;
  throw bignlp::UsageError(fmt::format("bignlp-bind: --balanced expects true or false, got '{}'", s));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Binds to this rank's CPU cores (numa_mapping), then runs the worker in the same process."};
  std::string mode = "unique_contiguous";
  std::string scope = "node";
  std::string cores = "all_logical";
  std::string balanced = "true";
  int min_cores = 1;
  std::string max_cores = "8";
  std::optional<int> local_rank;
  std::optional<int> local_size;
  bool verbose = false;
  std::vector<std::string> command;
  app.add_option("--mode", mode, "all, single, single_unique, unique_interleaved or unique_contiguous");
  app.add_option("--scope", scope, "node or socket");
  app.add_option("--cores", cores, "all_logical or single_logical");
  app.add_option("--balanced", balanced, "true: the same number of cores for every rank of the node");
  app.add_option("--min-cores", min_cores, "fewest physical cores per rank");
  app.add_option("--max-cores", max_cores, "most physical cores per rank, or null");
  app.add_option("--local-rank", local_rank, "rank on this node (default: SLURM_LOCALID)");
  app.add_option("--local-size", local_size, "ranks on this node (default: SLURM_NTASKS_PER_NODE)");
  app.add_flag("-v,--verbose", verbose, "print the binding");
  app.add_option("command", command, "the worker and its arguments (after --)")->required();
  app.positionals_at_end();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    bignlp::launch::NumaSettings s;
    s.mode = bignlp::launch::parse_numa_mode(mode);
    s.scope = bignlp::launch::parse_numa_scope(scope);
    s.cores = bignlp::launch::parse_numa_cores(cores);
    s.balanced = parse_bool(balanced);
    s.min_cores = min_cores;
    if (max_cores == "null" || max_cores == "none" || max_cores.empty()) {
      s.max_cores.reset();
    } else {
      s.max_cores = std::stoi(max_cores);
    }
    const int rank = local_rank.value_or(env_int("SLURM_LOCALID").value_or(env_int("LOCAL_RANK").value_or(0)));
    int size = local_size.value_or(0);
    if (size <= 0) size = env_int("SLURM_NTASKS_PER_NODE").value_or(0);
    if (size <= 0) {
      const auto ntasks = env_int("SLURM_NTASKS");
      const auto nnodes = env_int("SLURM_NNODES");
      if (ntasks && nnodes && *nnodes > 0) size = (*ntasks + *nnodes - 1) / *nnodes;
    }
    if (size <= 0) size = env_int("LOCAL_WORLD_SIZE").value_or(1);
    const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
    const auto topology = bignlp::launch::detect_topology(cvd ? cvd : "");
    const auto placement = bignlp::launch::plan_numa_placement(topology, s, rank, size);
    bignlp::launch::bind_current_process(placement);
    if (verbose) {
      std::cerr << fmt::format("bignlp-bind: local rank {} of {}: CPUs {} ({} {})\n", rank, size,
                               bignlp::launch::format_cpu_list(placement.pus),
                               s.scope == bignlp::launch::NumaScope::kNode ? "NUMA node" : "package", placement.domain);
    }
  } catch (const bignlp::UsageError& e) {
    std::cerr << e.what() << "\n";
    return e.exit_code();
  } catch (const bignlp::ConfigError& e) {
    std::cerr << "bignlp-bind: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bignlp-bind: warning: " << e.what() << "; running without binding\n";
  }

  std::vector<char*> args;
  for (auto& c : command) args.push_back(c.data());
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::cerr << fmt::format("bignlp-bind: cannot run '{}': {}\n", command.front(), std::strerror(errno));
  return 127;
}
