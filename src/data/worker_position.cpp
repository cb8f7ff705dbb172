#include "bignlp/data/worker_position.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::data {

std::vector<int> worker_slots(const WorkerPosition& p, int slots_per_array_element, int total_slots) {
  std::vector<int> out;
  if (p.array_task_id) {
    const int slot = *p.array_task_id * slots_per_array_element + p.local_rank;
    if (*p.array_task_id < 0 || slot >= total_slots || p.local_rank >= slots_per_array_element) {
      throw ConfigError(fmt::format("array task {} with local task {} is outside the {} work slots ({} per array "
                                    "element); the job was submitted with a different node_array_size or "
                                    "workers_per_node than the config says",
                                    *p.array_task_id, p.local_rank, total_slots, slots_per_array_element));
    }
    out.push_back(slot);
    return out;
  }
  const int world = std::max(1, p.world_size);
  for (int s = 0; s < total_slots; ++s) {
    if (s % world == p.rank) out.push_back(s);
  }
  return out;
}

std::vector<int> worker_items(const WorkerPosition& p, const std::vector<int>& items) {
  if (p.array_task_id) {
    if (std::find(items.begin(), items.end(), *p.array_task_id) == items.end()) {
      std::vector<std::string> listed;
      for (int i : items) listed.push_back(std::to_string(i));
      throw ConfigError(fmt::format("array task {} is not one of the configured file numbers ({})", *p.array_task_id,
                                    join(listed, ",")));
    }
    return {*p.array_task_id};
  }
  std::vector<int> out;
  const int world = std::max(1, p.world_size);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (static_cast<int>(i % static_cast<std::size_t>(world)) == p.rank) out.push_back(items[i]);
  }
  return out;
}

std::vector<std::vector<std::size_t>> balance_by_size(const std::vector<std::uint64_t>& sizes, int workers) {
  const auto n = static_cast<std::size_t>(std::max(1, workers));
  std::vector<std::vector<std::size_t>> bins(n);
  std::vector<std::uint64_t> load(n, 0);
  std::vector<std::size_t> order(sizes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sizes[a] > sizes[b]; });
  for (const std::size_t i : order) {
    const auto lightest = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    bins[lightest].push_back(i);
    load[lightest] += sizes[i];
  }
  for (auto& b : bins) std::sort(b.begin(), b.end());
  return bins;
}

}  // namespace bignlp::data
