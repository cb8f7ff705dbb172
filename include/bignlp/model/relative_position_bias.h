// RelativePositionBias: T5's relative position bias, the provider behind PositionBias::kRelative.
//
// A learned table (num_buckets, NH) (NeMo's T5RelativePositionEmbedding, an nn.Embedding;
// replicated over TP, each rank reading its heads [head_offset, head_offset + NH/t)). For query i
// (at position query_offset + i) and key j, rel = j - (query_offset + i) falls in a bucket
// (megatron-model.md §8.3):
//   bidirectional:  nb = num_buckets / 2, bucket = nb * [rel > 0], n = |rel|
//   unidirectional: nb = num_buckets,     bucket = 0,             n = max(-rel, 0)
//   max_exact = nb / 2; n < max_exact: bucket += n; else bucket += min(max_exact +
//     trunc(ln(n / max_exact) / ln(max_distance / max_exact) * (nb - max_exact)), nb - 1)
// computed in fp32 like PyTorch. Example (32 buckets, max_distance 128, bidirectional): rel 3 ->
// 16 + 3 = 19, rel -3 -> 3, rel 20 -> 16 + 8 + trunc(ln(2.5) / ln(16) * 8) = 16 + 10 = 26.
// The model computes the bias once per stack and pass (LayerPass::position_bias) and adds the
// gradient every layer leaves (LayerPass::position_bias_grad) back into the table. Under TP each
// rank differentiates only its heads' columns: the table's gradient is then a partial sum over TP
// ranks (marked Parameter::sequence_parallel) that the model all-reduces with the others.
#pragma once

#include <cstdint>
#include <string>

#include "bignlp/model/parameters.h"
#include "bignlp/ops/context.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::model {

struct RelativePositionBiasSpec {
  std::string name;             ///< parameter prefix: "<name>.weight"
  int num_buckets = 32;         ///< relative_attention_num_buckets
  int max_distance = 128;       ///< relative_attention_max_distance
  int num_heads = 0;            ///< NH of the full model
  bool bidirectional = true;    ///< encoder self-attention (and cross); false for decoder self-attention
  float init_std = 0.02f;       ///< embedding_init_method_std
};

class RelativePositionBias {
 public:
  /// Registers the (num_buckets, NH) table. head_offset/local_heads: this TP rank's heads.
  RelativePositionBias(ParameterStore& store, const RelativePositionBiasSpec& spec, int head_offset = 0,
                       int local_heads = 0);

  /// The bucket of relative position rel = key - query.
  static int bucket(std::int64_t rel, bool bidirectional, int num_buckets, int max_distance);

  /// bias (NH/t, Tq, Tk) fp32 on ctx.device: bias[h, i, j] = table[bucket(j - (query_offset + i)),
  /// head_offset + h].
  void forward(const ops::OpContext& ctx, std::int64_t query_offset, const TensorView& bias) const;
  /// table grad += the sums of dbias (NH/t, Tq, Tk) fp32 over the positions of each bucket.
  void backward(const ops::OpContext& ctx, std::int64_t query_offset, const TensorView& dbias) const;

  Parameter& weight() const { return *table_; }

 private:
  RelativePositionBiasSpec spec_;
  int head_offset_ = 0;
  int local_heads_ = 0;
  Parameter* table_ = nullptr;
};

}  // namespace bignlp::model
