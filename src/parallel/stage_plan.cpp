#include "bignlp/parallel/stage_plan.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"

namespace bignlp::parallel {

StagePlan::StagePlan(int num_layers, int pp_size, int virtual_chunks)
    : num_layers_(num_layers), pp_size_(pp_size), chunks_(virtual_chunks) {
  if (pp_size < 1) throw ConfigError(fmt::format("model.pipeline_model_parallel_size must be >= 1, got {}", pp_size));
  if (virtual_chunks < 1) {
    throw ConfigError(fmt::format("model.virtual_pipeline_model_parallel_size must be >= 1, got {}", virtual_chunks));
  }
  if (num_layers < 1 || num_layers % pp_size != 0) {
    throw ConfigError(fmt::format("model.num_layers ({}) must be divisible by model.pipeline_model_parallel_size ({})",
                                  num_layers, pp_size));
  }
  if ((num_layers / pp_size) % virtual_chunks != 0) {
    throw ConfigError(fmt::format(
        "model.num_layers / model.pipeline_model_parallel_size ({} / {} = {}) must be divisible by "
        "model.virtual_pipeline_model_parallel_size ({})",
        num_layers, pp_size, num_layers / pp_size, virtual_chunks));
  }
}

LayerRange StagePlan::layers(int stage, int chunk) const {
  BIGNLP_CHECK(stage >= 0 && stage < pp_size_ && chunk >= 0 && chunk < chunks_, "stage {} chunk {} outside {} x {}",
               stage, chunk, pp_size_, chunks_);
  const int per = layers_per_chunk();
  const int begin = chunk * (num_layers_ / chunks_) + stage * per;
  return {begin, begin + per};
}

std::vector<int> StagePlan::stage_layers(int stage) const {
  std::vector<int> out;
  for (int c = 0; c < chunks_; ++c) {
    const LayerRange r = layers(stage, c);
    for (int l = r.begin; l < r.end; ++l) out.push_back(l);
  }
  return out;
}

std::pair<int, int> StagePlan::owner(int layer) const {
  BIGNLP_CHECK(layer >= 0 && layer < num_layers_, "layer {} outside [0, {})", layer, num_layers_);
  const int virtual_stage = layer / layers_per_chunk();
  return {virtual_stage % pp_size_, virtual_stage / pp_size_};
}

std::string StagePlan::to_string() const {
  std::string s;
  for (int r = 0; r < pp_size_; ++r) {
    if (r > 0) s += " | ";
    s += fmt::format("stage {}:", r);
    for (int c = 0; c < chunks_; ++c) {
      const LayerRange x = layers(r, c);
      s += fmt::format(" [{},{})", x.begin, x.end);
    }
  }
  return s;
}

}  // namespace bignlp::parallel
