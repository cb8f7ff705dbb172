// shell_quote: bare safe words, single quotes otherwise, and -- the property that matters --
// every quoted word reaches a real shell as exactly the original text.
#include "bignlp/launch/shell.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/launch/process.h"

namespace bignlp::launch {
namespace {

TEST(ShellQuote, LeavesSafeWordsBare) {
  EXPECT_EQ(shell_quote("abc"), "abc");
  EXPECT_EQ(shell_quote("/a/b-c_d.e:f,g@h%i+j=k"), "/a/b-c_d.e:f,g@h%i+j=k");
}

TEST(ShellQuote, QuotesEverythingElse) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\"'\"'s'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
  EXPECT_EQ(shell_quote("a\nb"), "'a\nb'");
}

TEST(ShellQuote, RejectsNul) {
  EXPECT_THROW(shell_quote(std::string("a\0b", 3)), RenderError);
}

// Hostile values: each must come back from bash byte for byte, and none may run anything.
const std::vector<std::string>& hostile_values() {
  static const std::vector<std::string> values = {
      "plain",
      "with space",
      "it's",
      "double \" quote",
      "$(touch /tmp/bignlp-injected)",
      "`touch /tmp/bignlp-injected`",
      "${HOME}",
      "a;b && c || d | e > f < g",
      "line1\nline2\n",
      "\\backslash\\",
      "*?[glob]",
      "~tilde",
      "'\"'\"'",
      "\t tab",
      "-n",
      "",
      "é ünïcödé ✓",
  };
  return values;
}

TEST(ShellQuote, RoundTripsThroughBash) {
  for (const auto& v : hostile_values()) {
    const CapturedRun r = run_captured({"bash", "-c", "printf '%s' " + shell_quote(v)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, v) << "value " << quote_for_message(v);
  }
}

TEST(ShellQuote, JoinKeepsWordBoundaries) {
  const auto& values = hostile_values();
  const CapturedRun r = run_captured({"bash", "-c", "for a in " + shell_join(values) + "; do printf '%s\\0' \"$a\"; done"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> got;
  std::size_t start = 0;
  for (std::size_t i = 0; i < r.out.size(); ++i) {
    if (r.out[i] == '\0') {
      got.push_back(r.out.substr(start, i - start));
      start = i + 1;
    }
  }
  EXPECT_EQ(got, values);
}

TEST(EnvName, AcceptsOnlyShellNames) {
  EXPECT_TRUE(is_env_name("NCCL_DEBUG"));
  EXPECT_TRUE(is_env_name("_x1"));
  EXPECT_FALSE(is_env_name("1X"));
  EXPECT_FALSE(is_env_name("A-B"));
  EXPECT_FALSE(is_env_name("A=B"));
  EXPECT_FALSE(is_env_name(""));
  EXPECT_FALSE(is_env_name("X;rm"));
}

TEST(QuoteForMessage, EscapesControlCharacters) {
  EXPECT_EQ(quote_for_message("a\nb\t\"c\"\x01"), "\"a\\nb\\t\\\"c\\\"\\x01\"");
}

}  // namespace
}  // namespace bignlp::launch
