// StagePlan: which transformer layers each pipeline stage (and virtual chunk) holds, in integers.
//
// Megatron's partition (megatron-model.md 5.1): L layers over p stages, each stage holding vp model
// chunks of L/(p*vp) consecutive layers; chunk c of stage r starts at layer
//     c * (L / vp) + r * (L / (p * vp)).
// Without interleaving (vp = 1) stage r holds [r*L/p, (r+1)*L/p). Example L = 8, p = 2, vp = 4:
// stage 0 = [0], [2], [4], [6] and stage 1 = [1], [3], [5], [7]. The embedding lives in chunk 0 of
// stage 0, the final LayerNorm, output layer and loss in the last chunk of the last stage. A chunk
// is a "virtual stage": virtual stage v = c * p + r runs layers [v*L/(p*vp), (v+1)*L/(p*vp)).
#pragma once

#include <string>
#include <vector>

namespace bignlp::parallel {

/// Layers [begin, end) (global 0-based indices).
struct LayerRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
  friend bool operator==(const LayerRange&, const LayerRange&) = default;
};

class StagePlan {
 public:
  /// Throws ConfigError naming model.num_layers / model.pipeline_model_parallel_size /
  /// model.virtual_pipeline_model_parallel_size when L is not divisible by p * vp.
  StagePlan(int num_layers, int pp_size, int virtual_chunks = 1);

  int num_layers() const { return num_layers_; }
  int pp_size() const { return pp_size_; }
  int num_chunks() const { return chunks_; }
  int layers_per_chunk() const { return num_layers_ / (pp_size_ * chunks_); }

  /// The layers of chunk `chunk` on stage `stage`.
  LayerRange layers(int stage, int chunk = 0) const;
  /// Every layer of a stage, chunk by chunk.
  std::vector<int> stage_layers(int stage) const;
  /// The stage and chunk that hold global layer `layer`.
  std::pair<int, int> owner(int layer) const;
  bool has_embedding(int stage, int chunk) const { return stage == 0 && chunk == 0; }
  bool has_head(int stage, int chunk) const { return stage == pp_size_ - 1 && chunk == chunks_ - 1; }

  /// "stage 0: [0,1) [2,3) | stage 1: [1,2) [3,4)".
  std::string to_string() const;

 private:
  int num_layers_, pp_size_, chunks_;
};

}  // namespace bignlp::parallel
