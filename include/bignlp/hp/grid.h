// The training search's candidate grid (docs/hp_tool.md §4): TP/PP/micro-batch lists by model
// size, the divisibility pruning, the activation-checkpointing and interleaved-pipeline knobs, and
// the candidates in launch order with their names.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bignlp/hp/model_size.h"

namespace bignlp::hp {

/// User lists from train_settings; nullopt = "auto" (the size heuristic).
struct GridOverrides {
  std::optional<std::vector<int>> tensor_parallel_sizes;
  std::optional<std::vector<int>> pipeline_parallel_sizes;
  std::optional<std::vector<int>> micro_batch_sizes;
  std::optional<int> min_model_parallel_size;
  std::optional<int> max_model_parallel_size;
  std::optional<std::vector<int>> act_ckpt_layers;
};

struct Grid {
  std::vector<int> tp, pp, mbs;
  int min_model_parallel = 1;
  int max_model_parallel = 8;
  bool operator==(const Grid&) const = default;
};

/// Pipeline sizes the layers allow: GPT/BERT the divisors of L; T5/mT5 1 and then 2*d for each
/// divisor d of the per-stack L (encoder and decoder stages).
std::vector<int> valid_pipeline_sizes(Family family, int layers);

/// The TP/PP/MBS lists and the TP*PP bounds for a model of `size` billions with `layers` layers
/// (per stack for T5) at `seq_length` on 40 or 80 GB GPUs; overrides replace lists.
Grid calculate_tp_pp_mbs_grid(Family family, double size, int layers, int seq_length, int gpu_memory_gb,
                              const GridOverrides& overrides = {});

/// One candidate of the search.
struct Candidate {
  int tp = 1, pp = 1, mbs = 1;
  std::optional<int> act_ckpt_layers;        ///< activations_checkpoint_num_layers (T5: enc + dec)
  std::optional<int> num_micro_batches_with_partial_activation_checkpoints;
  std::optional<int> activations_checkpoint_layers_per_pipeline;
  std::optional<int> virtual_pipeline_size;  ///< interleaved schedule; nullopt: none
  bool operator==(const Candidate&) const = default;
};

struct SearchModel {
  Family family = Family::kGpt3;
  double size_in_b = 0;
  std::string size_label;     ///< how the size is written in names ("5", "5.0", "0.126")
  int layers = 0;             ///< per stack for T5
  int num_attention_heads = 0;
  int global_batch_size = 0;
  int seq_length = 2048;
  std::string act_method = "block";  ///< model.activations_checkpoint_method
};

struct Cluster {
  int num_nodes = 1;      ///< the training run's nodes (the divisibility check's GPU count)
  int gpus_per_node = 8;
};

/// The candidates in the reference's order: valid (TP, PP) pairs TP-major, then MBS, act layers,
/// partial-checkpoint micro-batches, layers per pipeline. `raw` keeps the reference's duplicates
/// (its partial-checkpoint list starts 0 -> 1, so with 1 again the first two coincide); the
/// default drops repeats, keeping the first. `partial_checkpointing` false: the partial-checkpoint
/// micro-batch and layers-per-pipeline axes are left null (bignlp-train does not implement
/// Megatron's partial checkpointing of in-flight micro-batches), so they add no candidates.
std::vector<Candidate> generate_candidates(const SearchModel& model, const Grid& grid, const Cluster& cluster,
                                           const std::optional<std::vector<int>>& act_ckpt_layers = std::nullopt,
                                           bool raw = false, bool partial_checkpointing = true);

/// The (TP, PP) pairs with at least one valid micro batch (§4.2), TP-major.
std::vector<std::pair<int, int>> valid_tp_pp(const SearchModel& model, const Grid& grid, const Cluster& cluster);

/// `<model>_<size>b_<N>nodes_tp_<tp>_pp_<pp>_mbs_<mbs>_act_ckpt_<act>_num_mbs_act_<n>_act_per_pipe_<a>`
/// (None for a null value).
std::string candidate_name(const SearchModel& model, int search_nodes, const Candidate& c);

/// Python's str() of a float ("5.0", "0.126", "12.9").
std::string python_float_str(double x);

}  // namespace bignlp::hp
