#include "bignlp/launch/array_spec.h"

#include <gtest/gtest.h>

#include "bignlp/core/index_list.h"

namespace bignlp::launch {
namespace {

TEST(IndexList, FormatsCompactly) {
  EXPECT_EQ(format_index_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(format_index_list({4}), "4");
  EXPECT_EQ(format_index_list(parse_index_list("0,3,5-7", "k")), "0,3,5-7");
}

TEST(ArraySpec, SlurmValue) {
  EXPECT_EQ((ArraySpec{parse_index_list("0-29", "k"), 30}).slurm_value(), "0-29%30");
  EXPECT_EQ((ArraySpec{{0, 3, 5, 6, 7}, 0}).slurm_value(), "0,3,5-7");
}

}  // namespace
}  // namespace bignlp::launch
