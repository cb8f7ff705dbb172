// ProcessGrid: where a rank sits in the tp x pp x dp grid, and who its group partners are.
//
// An immutable value computed from (world_size, rank, tp, pp) alone: pure rank arithmetic, no
// communication and no global state; the program builds one from the config and passes it (with
// the communicators of its groups, see ParallelGroups) to whatever needs it.
//
// Order (Megatron's, TP fastest, then DP, then PP):
//     rank = pp_rank * (tp * dp) + dp_rank * tp + tp_rank
// Derivation: Megatron builds TP groups as consecutive blocks [i*tp, (i+1)*tp); PP groups as the
// strided sets {j, j + W/pp, j + 2W/pp, ...}, i.e. the pipeline stage is the slowest index with
// block size W/pp = tp*dp; within one stage's block, DP groups are the ranks with equal TP index
// {start + k, start + k + tp, ...}, so dp is the middle index with stride tp. Inverting:
//     tp_rank = rank % tp,  dp_rank = (rank / tp) % dp,  pp_rank = rank / (tp * dp).
// Worked example (Megatron's docstring): W = 16, tp = 2, pp = 4 (dp = 2):
//     TP groups [0,1] [2,3] [4,5] [6,7] [8,9] [10,11] [12,13] [14,15]
//     PP groups [0,4,8,12] [1,5,9,13] [2,6,10,14] [3,7,11,15]
//     DP groups [0,2] [1,3] [4,6] [5,7] [8,10] [9,11] [12,14] [13,15]
//     rank 11: tp_rank 1, dp_rank 1, pp_rank 2.
// The model-parallel group (TP x PP, one replica) is every rank with the same dp_rank; the
// embedding group is {first, last} stage of the rank's pipeline (just {rank} when pp == 1).
#pragma once

#include <string>
#include <vector>

namespace bignlp::comm {

class ProcessGrid {
 public:
  /// The single-rank grid.
  ProcessGrid() = default;
  /// Throws ConfigError when world_size is not a multiple of tp * pp (naming the keys) or a size
  /// is not positive, RuntimeError when rank is outside [0, world_size).
  ProcessGrid(int world_size, int rank, int tp_size, int pp_size);

  int world_size() const { return world_size_; }
  int rank() const { return rank_; }
  int tp_size() const { return tp_size_; }
  int pp_size() const { return pp_size_; }
  int dp_size() const { return dp_size_; }
  int tp_rank() const { return tp_rank_; }
  int pp_rank() const { return pp_rank_; }
  int dp_rank() const { return dp_rank_; }
  bool is_first_stage() const { return pp_rank_ == 0; }
  bool is_last_stage() const { return pp_rank_ == pp_size_ - 1; }

  /// The world rank at grid position (tp, pp, dp).
  int rank_of(int tp_rank, int pp_rank, int dp_rank) const;

  /// This rank's groups, as world ranks in group-rank order.
  std::vector<int> tp_group() const;
  std::vector<int> pp_group() const;
  std::vector<int> dp_group() const;
  std::vector<int> model_parallel_group() const;
  /// {first stage, last stage} of this rank's pipeline ({rank} when pp == 1). Only meaningful for
  /// first/last-stage ranks (others are not members; see in_embedding_group()).
  std::vector<int> embedding_group() const;
  bool in_embedding_group() const { return is_first_stage() || is_last_stage(); }

  /// Every group of a kind, in Megatron's enumeration order (for tests and diagnostics).
  std::vector<std::vector<int>> all_tp_groups() const;
  std::vector<std::vector<int>> all_pp_groups() const;
  std::vector<std::vector<int>> all_dp_groups() const;

  /// "tp 1/2 pp 0/2 dp 1/2".
  std::string to_string() const;

 private:
  int world_size_ = 1, rank_ = 0;
  int tp_size_ = 1, pp_size_ = 1, dp_size_ = 1;
  int tp_rank_ = 0, pp_rank_ = 0, dp_rank_ = 0;
};

}  // namespace bignlp::comm
