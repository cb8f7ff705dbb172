// NUMA mapping: which CPU cores each worker process of a node may run on (config numa_mapping).
//
// Each local rank is tied to a domain: the NUMA node (scope node) or the package (scope socket)
// of its GPU, or, without GPU locality information, a share of the node's domains in rank order
// (ranks 0..k-1 on the first domain, and so on). Within its domain a rank gets
//   all                 every core of the domain
//   single              the domain's first core (shared by the domain's ranks)
//   single_unique       one core of its own
//   unique_interleaved  cores of its own, taken round-robin (rank i of k: cores i, i+k, ...)
//   unique_contiguous   cores of its own, one contiguous block
// `balanced` gives every rank of the node the same number of cores (the smallest share);
// min_cores/max_cores bound the number of physical cores; `cores` picks all hyper-threads of
// each core (all_logical) or the first one (single_logical).
//
// Planning is a pure function of a Topology (data, testable with made-up machines); detection
// and binding use hwloc. Binding is done by `bignlp-bind`, which binds itself and then executes
// the worker, so the worker process itself runs with the binding (a binding made by a helper
// process that then exits would be lost).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bignlp::launch {

enum class NumaMode { kAll, kSingle, kSingleUnique, kUniqueInterleaved, kUniqueContiguous };
enum class NumaScope { kNode, kSocket };
enum class NumaCores { kAllLogical, kSingleLogical };

/// The numa_mapping section of the config.
struct NumaSettings {
  bool enable = true;
  NumaMode mode = NumaMode::kUniqueContiguous;
  NumaScope scope = NumaScope::kNode;
  NumaCores cores = NumaCores::kAllLogical;
  bool balanced = true;
  int min_cores = 1;
  std::optional<int> max_cores = 8;
};

/// Parsers for the config words; throw ConfigError naming `numa_mapping.<key>` and the choices.
NumaMode parse_numa_mode(std::string_view text);
NumaScope parse_numa_scope(std::string_view text);
NumaCores parse_numa_cores(std::string_view text);
std::string_view to_string(NumaMode mode);
std::string_view to_string(NumaScope scope);
std::string_view to_string(NumaCores cores);

/// The machine as far as binding cares.
struct Topology {
  struct Core {
    std::vector<int> pus;  ///< OS indices of its logical processors (hyper-threads), ascending
    int numa_node = 0;     ///< logical index of its NUMA node
    int package = 0;       ///< logical index of its package (socket)
  };
  std::vector<Core> cores;  ///< physical cores this process may use, in OS order
  struct Gpu {
    int numa_node = -1;  ///< -1: unknown
    int package = -1;
  };
  std::vector<Gpu> gpus;  ///< GPUs visible to the process, in CUDA order
};

/// The result of planning for one rank.
struct NumaPlacement {
  std::vector<int> pus;  ///< logical processors to bind to, ascending
  int domain = -1;       ///< the NUMA node or package they belong to
};

/// The placement of local rank `local_rank` of `local_size` on `topology`. Throws
/// RuntimeError when the settings cannot be met (e.g. fewer cores than min_cores per rank).
NumaPlacement plan_numa_placement(const Topology& topology, const NumaSettings& settings, int local_rank,
                                  int local_size);

/// This machine's topology (hwloc), restricted to the cores this process may use. GPUs are the
/// NVIDIA PCI devices in bus order, reordered by `cuda_visible_devices` when that lists indices.
Topology detect_topology(std::string_view cuda_visible_devices);

/// Binds the calling process (all its threads, and whatever it executes next) to `placement`.
/// Throws RuntimeError naming the reason when the OS refuses.
void bind_current_process(const NumaPlacement& placement);

/// "0-3,8-11" for {0,1,2,3,8,9,10,11}.
std::string format_cpu_list(const std::vector<int>& pus);

}  // namespace bignlp::launch
