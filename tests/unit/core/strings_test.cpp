#include "bignlp/core/strings.h"

#include <gtest/gtest.h>

namespace bignlp {
namespace {

TEST(StringsTest, SplitKeepsEmptyFields) {
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(join({"x", "y", "z"}, ", "), "x, y, z");
}

TEST(StringsTest, TrimAndCase) {
  EXPECT_EQ(trim("  a b \n"), "a b");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(to_lower("GPT3/5B"), "gpt3/5b");
  EXPECT_EQ(replace_all("a.b.c", ".", "::"), "a::b::c");
}

TEST(StringsTest, EditDistanceAndSuggestions) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  const std::vector<std::string> options{"gpt3/126m", "gpt3/5b", "gpt3/20b", "t5/3b"};
  const auto m = closest_matches("gpt3/7b", options);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.front(), "gpt3/5b");
  EXPECT_TRUE(closest_matches("completely-different", options).empty());
}

TEST(StringsTest, HumanFormats) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(3ull << 30), "3.00 GiB");
  EXPECT_EQ(format_duration(0.012), "12ms");
  EXPECT_EQ(format_duration(4.25), "4.25s");
  EXPECT_EQ(format_duration(3723), "1h02m03s");
}

}  // namespace
}  // namespace bignlp
