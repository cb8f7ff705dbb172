// The padded vocabulary: Megatron's rule (megatron-model.md §1.7).
#include "bignlp/sizing/vocab.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"

namespace bignlp::sizing {
namespace {

TEST(VocabPadding, MegatronRule) {
  EXPECT_EQ(padded_vocab_size(50257, 128, 1), 50304);
  EXPECT_EQ(padded_vocab_size(50257, 128, 2), 50432);
  EXPECT_EQ(padded_vocab_size(50257, 128, 4), 50688);
  EXPECT_EQ(padded_vocab_size(50257, 128, 8), 51200);
  EXPECT_EQ(padded_vocab_size(29096, 128, 1), 29184);
  EXPECT_EQ(padded_vocab_size(50304, 128, 1), 50304);
  EXPECT_THROW(padded_vocab_size(100, 0, 1), ConfigError);
  EXPECT_THROW(padded_vocab_size(100, 128, 0), ConfigError);
  EXPECT_THROW(padded_vocab_size(-1, 128, 1), ConfigError);
}

}  // namespace
}  // namespace bignlp::sizing
