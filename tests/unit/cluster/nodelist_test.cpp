#include "bignlp/cluster/nodelist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bignlp/core/error.h"

namespace bignlp::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Nodelist, ExpandsRangesAndSingleValues) {
  EXPECT_THAT(expand_nodelist("hpc-pg0-[1-3,10]"), ElementsAre("hpc-pg0-1", "hpc-pg0-2", "hpc-pg0-3", "hpc-pg0-10"));
  EXPECT_EQ(expand_nodelist("hpc-pg0-[1-8]").size(), 8u);
  EXPECT_THAT(expand_nodelist("gpu7"), ElementsAre("gpu7"));
}

TEST(Nodelist, KeepsTheZeroPaddingOfTheLowerBound) {
  EXPECT_THAT(expand_nodelist("node[08-11]"), ElementsAre("node08", "node09", "node10", "node11"));
  EXPECT_THAT(expand_nodelist("n[001-002,010]"), ElementsAre("n001", "n002", "n010"));
  EXPECT_THAT(expand_nodelist("n[9-10]"), ElementsAre("n9", "n10"));
}

TEST(Nodelist, SeveralExpressionsAndPrefixes) {
  EXPECT_THAT(expand_nodelist("a[1-2],b[5,7],c"), ElementsAre("a1", "a2", "b5", "b7", "c"));
  EXPECT_THAT(expand_nodelist("rack[1-2]-n[1-2]"), ElementsAre("rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"));
  EXPECT_THAT(expand_nodelist("dgx[1-2].cluster"), ElementsAre("dgx1.cluster", "dgx2.cluster"));
}

void expect_error(const char* expr, const char* needle) {
  try {
    expand_nodelist(expr, "--nodelist");
    ADD_FAILURE() << expr << " was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("--nodelist"));
    EXPECT_THAT(e.what(), HasSubstr(needle)) << expr;
  }
}

TEST(Nodelist, RefusesBadSyntaxNamingThePart) {
  expect_error("n[1-4", "without its ']'");
  expect_error("n1-4]", "without its '['");
  expect_error("n[4-1]", "reversed range");
  expect_error("n[a-b]", "is not a number");
  expect_error("n[]", "is not a number");
  expect_error("n[1,,2]", "is not a number");
  expect_error("a,,b", "empty entry");
  expect_error("n[1-2],n2", "host 'n2' twice");
  expect_error("n[[1]]", "nests");
  expect_error("n[1-2] m", "white space");
  expect_error("", "empty");
  expect_error("n[0-99999]", "more than 65536");
}

}  // namespace
}  // namespace bignlp::cluster
