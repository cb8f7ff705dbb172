#include "bignlp/comm/process_grid.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"

namespace bignlp::comm {

ProcessGrid::ProcessGrid(int world_size, int rank, int tp_size, int pp_size)
    : world_size_(world_size), rank_(rank), tp_size_(tp_size), pp_size_(pp_size) {
  if (tp_size < 1) throw ConfigError(fmt::format("model.tensor_model_parallel_size must be >= 1, got {}", tp_size));
  if (pp_size < 1) throw ConfigError(fmt::format("model.pipeline_model_parallel_size must be >= 1, got {}", pp_size));
  if (world_size < 1 || world_size % (tp_size * pp_size) != 0) {
    throw ConfigError(fmt::format(
        "the world of {} ranks (trainer.num_nodes x trainer.devices) is not a multiple of "
        "model.tensor_model_parallel_size x model.pipeline_model_parallel_size = {} x {} = {}",
        world_size, tp_size, pp_size, tp_size * pp_size));
  }
  BIGNLP_CHECK(rank >= 0 && rank < world_size, "rank {} is outside the world of {} ranks", rank, world_size);
  dp_size_ = world_size / (tp_size * pp_size);
  tp_rank_ = rank % tp_size;
  dp_rank_ = (rank / tp_size) % dp_size_;
  pp_rank_ = rank / (tp_size * dp_size_);
}

int ProcessGrid::rank_of(int tp_rank, int pp_rank, int dp_rank) const {
  BIGNLP_CHECK(tp_rank >= 0 && tp_rank < tp_size_ && pp_rank >= 0 && pp_rank < pp_size_ && dp_rank >= 0 &&
                   dp_rank < dp_size_,
               "grid position (tp {}, pp {}, dp {}) is outside {}x{}x{}", tp_rank, pp_rank, dp_rank, tp_size_,
               pp_size_, dp_size_);
  return pp_rank * (tp_size_ * dp_size_) + dp_rank * tp_size_ + tp_rank;
}

std::vector<int> ProcessGrid::tp_group() const {
  std::vector<int> g;
  for (int t = 0; t < tp_size_; ++t) g.push_back(rank_of(t, pp_rank_, dp_rank_));
  return g;
}

std::vector<int> ProcessGrid::pp_group() const {
  std::vector<int> g;
  for (int p = 0; p < pp_size_; ++p) g.push_back(rank_of(tp_rank_, p, dp_rank_));
  return g;
}

std::vector<int> ProcessGrid::dp_group() const {
  std::vector<int> g;
  for (int d = 0; d < dp_size_; ++d) g.push_back(rank_of(tp_rank_, pp_rank_, d));
  return g;
}

std::vector<int> ProcessGrid::model_parallel_group() const {
  std::vector<int> g;
  for (int p = 0; p < pp_size_; ++p) {
    for (int t = 0; t < tp_size_; ++t) g.push_back(rank_of(t, p, dp_rank_));
  }
  return g;
}

std::vector<int> ProcessGrid::embedding_group() const {
  if (pp_size_ == 1) return {rank_};
  return {rank_of(tp_rank_, 0, dp_rank_), rank_of(tp_rank_, pp_size_ - 1, dp_rank_)};
}

std::vector<std::vector<int>> ProcessGrid::all_tp_groups() const {
  std::vector<std::vector<int>> out;
  for (int i = 0; i < world_size_ / tp_size_; ++i) {
    std::vector<int> g;
    for (int t = 0; t < tp_size_; ++t) g.push_back(i * tp_size_ + t);
    out.push_back(g);
  }
  return out;
}

std::vector<std::vector<int>> ProcessGrid::all_pp_groups() const {
  std::vector<std::vector<int>> out;
  const int stride = world_size_ / pp_size_;
  for (int j = 0; j < stride; ++j) {
    std::vector<int> g;
    for (int p = 0; p < pp_size_; ++p) g.push_back(j + p * stride);
    out.push_back(g);
  }
  return out;
}

std::vector<std::vector<int>> ProcessGrid::all_dp_groups() const {
  std::vector<std::vector<int>> out;
  const int block = world_size_ / pp_size_;
  for (int p = 0; p < pp_size_; ++p) {
    for (int t = 0; t < tp_size_; ++t) {
      std::vector<int> g;
      for (int r = p * block + t; r < (p + 1) * block; r += tp_size_) g.push_back(r);
      out.push_back(g);
    }
  }
  return out;
}

std::string ProcessGrid::to_string() const {
  return fmt::format("tp {}/{} pp {}/{} dp {}/{}", tp_rank_, tp_size_, pp_rank_, pp_size_, dp_rank_, dp_size_);
}

}  // namespace bignlp::comm
