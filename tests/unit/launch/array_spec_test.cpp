#include "bignlp/launch/array_spec.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"

namespace bignlp::launch {
namespace {

TEST(IndexList, ParsesNumbersRangesAndCommas) {
  EXPECT_EQ(parse_index_list("0,3,5-7", "k"), (std::vector<int>{0, 3, 5, 6, 7}));
  EXPECT_EQ(parse_index_list("7", "k"), (std::vector<int>{7}));
  EXPECT_EQ(parse_index_list(" 2 - 4 , 0 ", "k"), (std::vector<int>{0, 2, 3, 4}));
  EXPECT_EQ(parse_index_list("0-29", "k").size(), 30u);
}

TEST(IndexList, RejectsBadInputNamingTheKey) {
  for (const char* bad : {"", "a", "1,,2", "3-1", "-1", "1-", "1:2", "1-7:2", "2,2", "0-3,2"}) {
    try {
      parse_index_list(bad, "data_preparation.file_numbers");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("data_preparation.file_numbers"), std::string::npos) << e.what();
    }
  }
}

TEST(IndexList, MessagesSayWhatIsWrong) {
  try {
    parse_index_list("5-3", "file_numbers");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "file_numbers: '5-3': the range '5-3' runs backwards (write it as 3-5)");
  }
}

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
