#include "bignlp/launch/numa.h"

#include <hwloc.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::launch {

namespace {

template <typename E, std::size_t N>
E parse_word(std::string_view text, std::string_view key, const std::array<std::pair<std::string_view, E>, N>& words) {
  std::vector<std::string> names;
  for (const auto& [name, value] : words) {
    if (text == name) return value;
    names.emplace_back(name);
  }
  throw ConfigError(fmt::format("numa_mapping.{}: '{}' is not one of {}", key, text, join(names, ", ")));
}

constexpr std::array<std::pair<std::string_view, NumaMode>, 5> kModes = {{
    {"all", NumaMode::kAll},
    {"single", NumaMode::kSingle},
    {"single_unique", NumaMode::kSingleUnique},
    {"unique_interleaved", NumaMode::kUniqueInterleaved},
    {"unique_contiguous", NumaMode::kUniqueContiguous},
}};
constexpr std::array<std::pair<std::string_view, NumaScope>, 2> kScopes = {{
    {"node", NumaScope::kNode},
    {"socket", NumaScope::kSocket},
}};
constexpr std::array<std::pair<std::string_view, NumaCores>, 2> kCores = {{
    {"all_logical", NumaCores::kAllLogical},
    {"single_logical", NumaCores::kSingleLogical},
}};

template <typename E, std::size_t N>
std::string_view word_of(E value, const std::array<std::pair<std::string_view, E>, N>& words) {
  for (const auto& [name, v] : words) {
    if (v == value) return name;
  }
  return "?";
}

}  // namespace

NumaMode parse_numa_mode(std::string_view text) { return parse_word(text, "mode", kModes); }
NumaScope parse_numa_scope(std::string_view text) { return parse_word(text, "scope", kScopes); }
NumaCores parse_numa_cores(std::string_view text) { return parse_word(text, "cores", kCores); }
std::string_view to_string(NumaMode mode) { return word_of(mode, kModes); }
std::string_view to_string(NumaScope scope) { return word_of(scope, kScopes); }
std::string_view to_string(NumaCores cores) { return word_of(cores, kCores); }

std::string format_cpu_list(const std::vector<int>& pus) {
  std::vector<int> sorted = pus;
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  std::size_t i = 0;
  while (i < sorted.size()) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", sorted[i]) : fmt::format("{}-{}", sorted[i], sorted[j]);
    i = j + 1;
  }
  return out;
}

NumaPlacement plan_numa_placement(const Topology& topology, const NumaSettings& settings, int local_rank,
                                  int local_size) {
  if (local_size < 1 || local_rank < 0 || local_rank >= local_size) {
    throw RuntimeError(fmt::format("numa mapping: local rank {} is not within 0..{}", local_rank, local_size - 1));
  }
  if (topology.cores.empty()) throw RuntimeError("numa mapping: no CPU cores are available to this process");
  const bool by_node = settings.scope == NumaScope::kNode;
  auto domain_of_core = [&](const Topology::Core& c) { return by_node ? c.numa_node : c.package; };

  // Domains that have usable cores, and their cores in OS order.
  std::map<int, std::vector<const Topology::Core*>> domain_cores;
  for (const auto& c : topology.cores) domain_cores[domain_of_core(c)].push_back(&c);
  std::vector<int> domains;
  for (const auto& [d, cs] : domain_cores) domains.push_back(d);

  // Each rank's domain: its GPU's, when every GPU's locality is known; else a share in rank order.
  bool gpu_known = !topology.gpus.empty();
  for (const auto& g : topology.gpus) {
    const int d = by_node ? g.numa_node : g.package;
    gpu_known = gpu_known && d >= 0 && domain_cores.count(d) > 0;
  }
  std::vector<int> rank_domain(static_cast<std::size_t>(local_size));
  for (int r = 0; r < local_size; ++r) {
    if (gpu_known) {
      const auto& g = topology.gpus[static_cast<std::size_t>(r) % topology.gpus.size()];
      rank_domain[static_cast<std::size_t>(r)] = by_node ? g.numa_node : g.package;
    } else {
      const std::size_t k = static_cast<std::size_t>(r) * domains.size() / static_cast<std::size_t>(local_size);
      rank_domain[static_cast<std::size_t>(r)] = domains[k];
    }
  }
  const int domain = rank_domain[static_cast<std::size_t>(local_rank)];
  const auto& cores = domain_cores[domain];
  auto sharers = [&](int d) {
    return static_cast<int>(std::count(rank_domain.begin(), rank_domain.end(), d));
  };
  const int k = sharers(domain);
  int pos = 0;
  for (int r = 0; r < local_rank; ++r) pos += rank_domain[static_cast<std::size_t>(r)] == domain ? 1 : 0;
  const int ncores = static_cast<int>(cores.size());

  std::vector<const Topology::Core*> chosen;
  switch (settings.mode) {
    case NumaMode::kAll:
      chosen = cores;
      break;
    case NumaMode::kSingle:
      chosen = {cores.front()};
      break;
    case NumaMode::kSingleUnique:
      if (k > ncores) {
        throw RuntimeError(fmt::format("numa mapping single_unique: {} ranks share a domain of {} cores", k, ncores));
      }
      chosen = {cores[static_cast<std::size_t>(pos)]};
      break;
    case NumaMode::kUniqueInterleaved:
    case NumaMode::kUniqueContiguous: {
      int share = ncores / k;
      if (settings.balanced) {
        for (int d : domains) {
          const int kd = sharers(d);
          if (kd > 0) share = std::min(share, static_cast<int>(domain_cores[d].size()) / kd);
        }
      }
      if (settings.max_cores) share = std::min(share, *settings.max_cores);
      if (share < std::max(1, settings.min_cores)) {
        throw RuntimeError(fmt::format(
            "numa mapping {}: {} rank(s) on a domain of {} core(s) leaves {} core(s) per rank, fewer than "
            "min_cores {}",
            to_string(settings.mode), k, ncores, share, std::max(1, settings.min_cores)));
      }
      for (int i = 0; i < share; ++i) {
        const int idx = settings.mode == NumaMode::kUniqueContiguous ? pos * share + i : pos + i * k;
        chosen.push_back(cores[static_cast<std::size_t>(idx)]);
      }
      break;
    }
  }
  NumaPlacement placement;
  placement.domain = domain;
  for (const auto* c : chosen) {
    if (settings.cores == NumaCores::kSingleLogical) {
      placement.pus.push_back(c->pus.front());
    } else {
      placement.pus.insert(placement.pus.end(), c->pus.begin(), c->pus.end());
    }
  }
  std::sort(placement.pus.begin(), placement.pus.end());
  return placement;
}

namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

TopologyPtr load_topology(bool with_io) {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) throw RuntimeError("hwloc: cannot initialise a topology");
  TopologyPtr topo(t);
  if (with_io) hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (hwloc_topology_load(t) != 0) throw RuntimeError(fmt::format("hwloc: cannot load the topology: {}", std::strerror(errno)));
  return topo;
}

// Logical index of the only object of `type` whose cpuset intersects `set`; -1 if none or several.
int unique_intersecting(hwloc_topology_t topo, hwloc_obj_type_t type, hwloc_const_cpuset_t set) {
  int found = -1;
  const int n = hwloc_get_nbobjs_by_type(topo, type);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, static_cast<unsigned>(i));
    if (o && o->cpuset && hwloc_bitmap_intersects(o->cpuset, set)) {
      if (found >= 0) return -1;
      found = i;
    }
  }
  return found;
}

}  // namespace

Topology detect_topology(std::string_view cuda_visible_devices) {
  TopologyPtr topo = load_topology(true);
  hwloc_topology_t t = topo.get();
  Topology out;
  const bool have_cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0;
  const hwloc_obj_type_t unit = have_cores ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  const int nunits = hwloc_get_nbobjs_by_type(t, unit);
  for (int i = 0; i < nunits; ++i) {
    hwloc_obj_t o = hwloc_get_obj_by_type(t, unit, static_cast<unsigned>(i));
    if (!o || !o->cpuset || hwloc_bitmap_iszero(o->cpuset)) continue;
    Topology::Core core;
    unsigned id = 0;
    hwloc_bitmap_foreach_begin(id, o->cpuset) { core.pus.push_back(static_cast<int>(id)); }
    hwloc_bitmap_foreach_end();
    const int numa = unique_intersecting(t, HWLOC_OBJ_NUMANODE, o->cpuset);
    core.numa_node = numa < 0 ? 0 : numa;
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, o);
    core.package = pkg ? static_cast<int>(pkg->logical_index) : 0;
    out.cores.push_back(std::move(core));
  }

  // NVIDIA display/3D controllers in PCI bus order, which is CUDA's order for identical GPUs.
  struct PciGpu {
    std::tuple<unsigned, unsigned, unsigned, unsigned> bus;
    Topology::Gpu gpu;
  };
  std::vector<PciGpu> gpus;
  for (hwloc_obj_t o = hwloc_get_next_pcidev(t, nullptr); o; o = hwloc_get_next_pcidev(t, o)) {
    const auto& p = o->attr->pcidev;
    if (p.vendor_id != 0x10de || (p.class_id >> 8) != 0x03) continue;
    PciGpu g;
    g.bus = {p.domain, p.bus, p.dev, p.func};
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, o);
    if (anc && anc->cpuset) {
      g.gpu.numa_node = unique_intersecting(t, HWLOC_OBJ_NUMANODE, anc->cpuset);
      g.gpu.package = unique_intersecting(t, HWLOC_OBJ_PACKAGE, anc->cpuset);
    }
    gpus.push_back(g);
  }
  std::sort(gpus.begin(), gpus.end(), [](const PciGpu& a, const PciGpu& b) { return a.bus < b.bus; });

  const std::string_view cvd = trim(cuda_visible_devices);
  if (cvd.empty()) {
    for (const auto& g : gpus) out.gpus.push_back(g.gpu);
    return out;
  }
  // Indices select and order the GPUs; anything else (UUIDs, MIG ids) leaves locality unknown.
  for (const std::string& item : split(cvd, ',')) {
    const std::string_view s = trim(item);
    int idx = -1;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), idx);
    if (ec != std::errc() || ptr != s.data() + s.size() || idx < 0 || static_cast<std::size_t>(idx) >= gpus.size()) {
      out.gpus.clear();
      return out;
    }
    out.gpus.push_back(gpus[static_cast<std::size_t>(idx)].gpu);
  }
  return out;
}

void bind_current_process(const NumaPlacement& placement) {
  if (placement.pus.empty()) throw RuntimeError("numa mapping: nothing to bind to");
  TopologyPtr topo = load_topology(false);
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  for (int pu : placement.pus) hwloc_bitmap_set(set, static_cast<unsigned>(pu));
  const int rc = hwloc_set_cpubind(topo.get(), set, HWLOC_CPUBIND_PROCESS);
  const int err = errno;
  hwloc_bitmap_free(set);
  if (rc != 0) {
    throw RuntimeError(fmt::format("numa mapping: cannot bind to CPUs {}: {}", format_cpu_list(placement.pus),
                                   std::strerror(err)));
  }
}

}  // namespace bignlp::launch
