#include "bignlp/core/logging.h"

#include <gtest/gtest.h>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace bignlp {
namespace {

TEST(LoggingTest, RankPrefixAndRankZeroOnly) {
  Logger base = Logger::capturing(LogLevel::kInfo);
  base.info("plain {}", 1);
  base.with_rank({.rank = 0, .tp = 0, .pp = 1, .dp = 2}).info("from rank zero");
  base.with_rank({.rank = 3, .tp = 1, .pp = 0, .dp = 1}).info("hidden");
  base.with_rank({.rank = 3, .tp = 1, .pp = 0, .dp = 1, .print_all_ranks = true}).warn("shown");
  base.debug("below level");
  const std::string out = base.captured();
  EXPECT_NE(out.find("[info] plain 1"), std::string::npos);
  EXPECT_NE(out.find("[rank 0 | tp 0 pp 1 dp 2] from rank zero"), std::string::npos);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("[warning] [rank 3 | tp 1 pp 0 dp 1] shown"), std::string::npos);
  EXPECT_EQ(out.find("below level"), std::string::npos);
}

TEST(LoggingTest, ParseLevel) {
  EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::kDebug);
  EXPECT_THROW(parse_log_level("loud"), UsageError);
}

TEST(CheckTest, FailureNamesStatementAndValues) {
  const int expected = 4, got = 3;
  try {
    BIGNLP_CHECK(got == expected, "expected {} heads, got {}", expected, got);
    FAIL();
  } catch (const RuntimeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("check 'got == expected' failed: expected 4 heads, got 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tests/unit/core/logging_test.cpp"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace bignlp
