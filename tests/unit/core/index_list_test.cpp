#include "bignlp/core/index_list.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"

namespace bignlp {
namespace {

TEST(IndexList, NumbersAndRanges) {
  EXPECT_EQ(parse_index_list("0,3,5-7", "file_numbers"), (std::vector<int>{0, 3, 5, 6, 7}));
  EXPECT_EQ(parse_index_list("0-3,6,10-12", "x"), (std::vector<int>{0, 1, 2, 3, 6, 10, 11, 12}));
  EXPECT_EQ(parse_index_list("7", "x"), (std::vector<int>{7}));
  EXPECT_EQ(parse_index_list(" 2 , 1 ", "x"), (std::vector<int>{1, 2}));
  EXPECT_EQ(parse_index_list("0-29", "x").size(), 30u);
}

TEST(IndexList, ErrorsNameTheKey) {
  for (const char* bad : {"", "a", "1,,2", "5-3", "1-2-3", "-1", "1,1"}) {
    try {
      parse_index_list(bad, "data_preparation.file_numbers");
      FAIL() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("data_preparation.file_numbers"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace bignlp
