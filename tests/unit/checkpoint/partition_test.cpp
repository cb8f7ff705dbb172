// The TP/PP shard math: hand-checked small cases, round trips, vocabulary re-padding and the
// global <-> local layer naming.
#include "bignlp/checkpoint/partition.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "bignlp/core/error.h"
#include "bignlp/sizing/vocab.h"

namespace bignlp::checkpoint {
namespace {

std::vector<float> iota(std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TensorView view(std::vector<float>& v, Shape s) { return TensorView(v.data(), DType::kF32, s); }

// The header's worked example: W (4, 6) = 0..23 over t = 2.
TEST(PartitionTest, SplitsTheWorkedExampleByHand) {
  std::vector<float> w = iota(24);
  std::vector<float> shard(12);
  tp_split(view(w, Shape{4, 6}), 0, 2, 1, view(shard, Shape{2, 6}));
  EXPECT_EQ(shard, (std::vector<float>{12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}));
  tp_split(view(w, Shape{4, 6}), 1, 2, 1, view(shard, Shape{4, 3}));
  EXPECT_EQ(shard, (std::vector<float>{3, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23}));
  // Element i = a*3 + b of rank 1 is full element a*6 + 3 + b.
  for (std::int64_t i = 0; i < 12; ++i) EXPECT_EQ(tp_full_index(Shape{4, 3}, 1, 2, 1, i), (i / 3) * 6 + 3 + i % 3);
  // Replicated: the whole tensor on every rank.
  std::vector<float> whole(24);
  tp_split(view(w, Shape{4, 6}), -1, 2, 1, view(whole, Shape{4, 6}));
  EXPECT_EQ(whole, w);
  EXPECT_EQ(tp_full_shape(Shape{4, 3}, 1, 2), (Shape{4, 6}));
  EXPECT_EQ(tp_shard_shape(Shape{4, 6}, 0, 2), (Shape{2, 6}));
  EXPECT_EQ(tp_shard_shape(Shape{4, 6}, -1, 2), (Shape{4, 6}));
  EXPECT_THROW(tp_shard_shape(Shape{4, 6}, 1, 4), ConfigError);
}

TEST(PartitionTest, ConcatenatingEveryShardRestoresTheTensor) {
  for (const Shape full_shape : {Shape{8}, Shape{4, 6}, Shape{2, 6, 4}, Shape{6, 2, 4}}) {
    for (int dim = 0; dim < full_shape.rank(); ++dim) {
      for (int t : {1, 2}) {
        if (full_shape[dim] % t != 0) continue;
        std::vector<float> full = iota(full_shape.numel()), back(full.size(), -1.0f);
        const Shape s = tp_shard_shape(full_shape, dim, t);
        for (int r = 0; r < t; ++r) {
          std::vector<float> shard(static_cast<std::size_t>(s.numel()));
          tp_split(view(full, full_shape), dim, t, r, view(shard, s));
          for (std::int64_t i = 0; i < s.numel(); ++i)
            EXPECT_EQ(shard[static_cast<std::size_t>(i)], static_cast<float>(tp_full_index(s, dim, t, r, i)));
          tp_concat(view(shard, s), dim, t, r, view(back, full_shape));
        }
        EXPECT_EQ(back, full) << full_shape.to_string() << " dim " << dim << " t " << t;
      }
    }
  }
}

TEST(PartitionTest, VocabularyRowsAreCutOrZeroFilled) {
  // V = 51, divisible by 8: 56 rows at TP 1, 64 at TP 2 (and 4), 96 at TP 12.
  EXPECT_EQ(sizing::padded_vocab_size(51, 8, 1), 56);
  EXPECT_EQ(sizing::padded_vocab_size(51, 8, 2), 64);
  EXPECT_EQ(sizing::padded_vocab_size(51, 8, 4), 64);
  EXPECT_EQ(sizing::padded_vocab_size(51, 8, 12), 96);
  std::vector<float> narrow = iota(56 * 2), wide(64 * 2, -1.0f), again(56 * 2, -1.0f);
  repad_vocab_rows(view(narrow, Shape{56, 2}), view(wide, Shape{64, 2}));
  for (std::size_t i = 0; i < wide.size(); ++i) EXPECT_EQ(wide[i], i < 112 ? static_cast<float>(i) : 0.0f) << i;
  repad_vocab_rows(view(wide, Shape{64, 2}), view(again, Shape{56, 2}));
  EXPECT_EQ(again, narrow);
}

TEST(PartitionTest, LayersMapToStagesChunksAndLocalNames) {
  // The header's example: L = 8, p = 2, vp = 2.
  const parallel::StagePlan plan(8, 2, 2);
  EXPECT_EQ(locate_layer(plan, 5), (LayerLocation{0, 1, 1}));
  EXPECT_EQ(locate_layer(plan, 2), (LayerLocation{1, 0, 0}));
  EXPECT_EQ(locate_layer(plan, 7), (LayerLocation{1, 1, 1}));
  for (int l = 0; l < 8; ++l) EXPECT_EQ(global_layer(plan, locate_layer(plan, l)), l);
  EXPECT_THROW(locate_layer(plan, 8), ConfigError);
  EXPECT_THROW(global_layer(plan, {0, 0, 2}), ConfigError);

  const std::string name = "model.language_model.encoder.layers.5.mlp.dense_h_to_4h.weight";
  EXPECT_EQ(layer_index_of(name), 5);
  EXPECT_EQ(to_local_layer_name(name, plan), "model.language_model.encoder.layers.1.mlp.dense_h_to_4h.weight");
  EXPECT_EQ(to_global_layer_name("model.language_model.encoder.layers.1.mlp.dense_h_to_4h.weight", plan, 0, 1), name);
  EXPECT_EQ(to_global_layer_name("model.language_model.encoder.layers.1.mlp.dense_h_to_4h.weight", plan, 1, 1),
            "model.language_model.encoder.layers.7.mlp.dense_h_to_4h.weight");
  EXPECT_EQ(with_layer_index("layers.12.x", 3), "layers.3.x");
  // Names outside the layers stay as they are.
  for (const char* other : {"model.language_model.embedding.word_embeddings.weight",
                            "model.language_model.encoder.final_layernorm.bias", "model.sublayers.3.x", "layers.x"}) {
    EXPECT_EQ(layer_index_of(other), std::nullopt) << other;
    EXPECT_EQ(to_local_layer_name(other, plan), other);
  }
}

}  // namespace
}  // namespace bignlp::checkpoint
