#include "bignlp/data/progress.h"

#include <gtest/gtest.h>

#include "bignlp/data/unicode.h"

namespace bignlp::data {
namespace {

TEST(Progress, FormatShowsRatesPercentAndEta) {
  const Logger log = Logger::capturing();
  ProgressReporter p(log, "preprocess", 1000, ProgressMode::kLog);
  ProgressCounters c;
  c.docs = 12345;
  c.bytes = 50u << 20;
  c.tokens = 12'000'000;
  c.done_units = 250;
  const std::string s = p.format(c, 10.0);
  EXPECT_NE(s.find("12.3k docs"), std::string::npos) << s;
  EXPECT_NE(s.find("50.00 MiB (5.2 MB/s)"), std::string::npos) << s;
  EXPECT_NE(s.find("12.00M tokens (1.20M tok/s)"), std::string::npos) << s;
  EXPECT_NE(s.find("25% ETA 30.00s"), std::string::npos) << s;
}

TEST(Progress, LogModeWritesPeriodicLinesAndAFinalOne) {
  const Logger log = Logger::capturing();
  ProgressReporter p(log, "job", 0, ProgressMode::kLog, /*log_seconds=*/1e9, /*log_interval_docs=*/100);
  ProgressCounters c;
  for (int i = 1; i <= 350; ++i) {
    c.docs = static_cast<std::uint64_t>(i);
    p.update(c);
  }
  p.finish(c);
  const std::string out = log.captured();
  std::size_t lines = 0;
  for (std::size_t pos = 0; (pos = out.find("job: ", pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, 4u) << out;  // at 100, 200, 300 documents, and the final line
  EXPECT_EQ(out.find('\r'), std::string::npos);  // no terminal control in log mode
}

TEST(Unicode, ClassesAndCaseMapping) {
  EXPECT_TRUE(unicode_flags(U'\u00E9') & kUnicodeLetter);
  EXPECT_TRUE(unicode_flags(U'\u0663') & kUnicodeNumber);   // Arabic-Indic three
  EXPECT_TRUE(unicode_flags(U'\u2163') & kUnicodeNumber);   // Roman numeral four (Nl)
  EXPECT_TRUE(unicode_flags(U'\u0085') & kUnicodeSpace);    // NEL is White_Space
  EXPECT_FALSE(unicode_flags(U'\uFEFF') & kUnicodeSpace);   // BOM is not
  EXPECT_FALSE(unicode_flags(0x1C) & kUnicodeSpace);
  EXPECT_TRUE(unicode_flags(0x1C) & kUnicodePySpace);       // but Python's str.isspace() says yes
  EXPECT_TRUE(unicode_flags(U'\u00A0') & kUnicodeBertSpace);
  EXPECT_TRUE(unicode_flags(U'\u200B') & kUnicodeBertControl);  // Cf
  EXPECT_TRUE(unicode_flags(U'$') & kUnicodeBertPunct);     // ASCII symbols count as punctuation
  EXPECT_TRUE(unicode_flags(U'\u3001') & kUnicodeBertPunct);
  EXPECT_TRUE(unicode_flags(U'\u4E2D') & kUnicodeCjk);
  EXPECT_TRUE(unicode_flags(U'\u0301') & kUnicodeMarkNonspacing);
  EXPECT_EQ(unicode_flags(0x110000), 0);
  EXPECT_EQ(utf8_to_lower("ÀÉÎ İ ΣΑΣ"), "àéî i̇ σας");  // full mapping incl. final sigma, as Python
  EXPECT_EQ(utf8_nfd("é"), "e\u0301");
  const std::string bad("\xE2\x82", 2);
  EXPECT_FALSE(decode_utf8(bad, 0).valid);
  EXPECT_EQ(decode_utf8("\xF0\x9F\x98\x80", 0).cp, U'\U0001F600');
}

}  // namespace
}  // namespace bignlp::data
