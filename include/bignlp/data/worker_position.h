// Where a data preparation worker sits in its job, and which share of the work is its own.
//
// The launcher runs each data preparation step as a Slurm job array (also on the local executor)
// or, on Base Command Platform, as one multi-node job: then there is no array index and the
// workers split the work by rank. The program's main() fills a WorkerPosition from the environment
// (SLURM_ARRAY_TASK_ID, SLURM_LOCALID, SLURM_PROCID, SLURM_NTASKS, SLURM_CPUS_PER_TASK); the
// functions here are pure.
//   slots (mC4/custom preprocessing): node_array_size x workers_per_node numbered work slots.
//     With an array index a: slot = a * workers_per_node + SLURM_LOCALID. Without: every slot s
//     with s % world_size == rank.
//   items (Pile file numbers): with an array index, the index is the item (it must be listed);
//     without, items[i] for every i with i % world_size == rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace bignlp::data {

struct WorkerPosition {
  std::optional<int> array_task_id;  ///< SLURM_ARRAY_TASK_ID
  int local_rank = 0;                ///< SLURM_LOCALID: task within the node / array element
  int rank = 0;                      ///< SLURM_PROCID: task within the job
  int world_size = 1;                ///< SLURM_NTASKS
  int cpus = 1;                      ///< CPUs this task may use
};

/// The work slots (0 <= slot < total_slots) this worker handles. Throws ConfigError when an array
/// index points outside the slots.
std::vector<int> worker_slots(const WorkerPosition& position, int slots_per_array_element, int total_slots);

/// The items of `items` this worker handles. Throws ConfigError when the array index is not one
/// of the items.
std::vector<int> worker_items(const WorkerPosition& position, const std::vector<int>& items);

/// Splits weighted jobs over `workers` bins, largest first into the lightest bin (ties: lowest
/// bin), so the bins' totals are balanced. Returns the indices of `sizes` per bin, each bin in
/// ascending index order. Deterministic.
std::vector<std::vector<std::size_t>> balance_by_size(const std::vector<std::uint64_t>& sizes, int workers);

}  // namespace bignlp::data
