#include "bignlp/data/gpt2_bpe.h"

#include "bignlp/data/batch_encode.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/unicode.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

fs::path vocab_path() { return testing::source_path("data/bpe/vocab.json"); }
fs::path merges_path() { return testing::source_path("data/bpe/merges.txt"); }

#define REQUIRE_GPT2_FILES()                                                                        \
  do {                                                                                              \
    if (!fs::exists(vocab_path()) || !fs::exists(merges_path()))                                    \
      GTEST_SKIP() << "GPT-2 vocab/merges not found in data/bpe: run scripts/fetch_demo_data.sh";   \
  } while (0)

const Gpt2BpeTokenizer& gpt2() {
  static const Gpt2BpeTokenizer tok(vocab_path(), merges_path());
  return tok;
}

// Texts covering the pre-tokenizer's branches: Unicode letters and numbers, emoji, whitespace runs
// of every kind, code, numbers, contractions (lower-case only), punctuation runs, long pieces.
std::vector<std::string> varied_corpus() {
  std::vector<std::string> v = {
      "Hello world, this is GPT-2!",
      "\n\n\n",
      "Hello\r\nWorld",
      "I'm you're they've we'll he'd it's",
      "DON'T STOP",
      "  leading and trailing  ",
      "multiple     spaces",
      "12345 67890 3.14159 1,000,000",
      "naïve café résumé",
      "Привет, мир!",
      "🤖🎉👍🏽",
      "def f(x):\n    return x**2\n",
      "hello\n\nhello",
      " The quick brown fox.",
      "It's 2023!  ok",
      "a  b",
      "<|endoftext|>",
      "x <|endoftext|> y",
      "tabs\t\tand\ttabs \t mixed\t",
      "\u3000ideographic\u3000space\u2003em\u00a0nbsp",
      "e\u0301 combining accents a\u0308",
      "日本語のテキストと中文字符，还有한국어。",
      "Ελληνικά και עברית וعربي",
      "₀₁₂ ½ ¾ Ⅻ ٣٤٥ १२३",
      "'s 't 're 've 'm 'll 'd 'S 'T 'x '' ''' '",
      "don't can't won't isn't shouldn't've",
      "!!!??? ... --- === +++ *** ### $$$ %%% &&& @@@",
      "<div class=\"x\">a &amp; b</div>",
      "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
      "https://example.com/path?query=1&other=2#frag",
      "user@example.com 192.168.0.1 2001:db8::1",
      "    \n    \n\t\n",
      " ",
      "",
      "a",
      "\n",
      "trailing space ",
      "trailing newline\n",
      "   three leading",
      "word\u2028line\u2029para",
      std::string(300, 'a'),
      std::string(500, ' ') + "x",
      std::string(200, '=') + "\n" + std::string(150, '-'),
      "aGVsbG8gd29ybGQgdGhpcyBpcyBhIGxvbmcgYmFzZTY0IHN0cmluZyB3aXRob3V0IGFueSBzcGFjZXMgYXQgYWxs",
      "0123456789012345678901234567890123456789012345678901234567890123456789",
      "MixedCASEWordsAndCamelCaseIdentifiersLikeThisOne",
      "emoji👨‍👩‍👧‍👦family and flags 🇩🇪🇯🇵 and keycap 1️⃣",
      "\x01\x02\x1b[31mred\x1b[0m\x7f",
      "zero\u200bwidth\u200djoiner\ufe0f",
  };
  // Random mixtures of the character pools above, seeded.
  const std::vector<std::string> pool = {"a", "Z", "é", "ß", "Ж", "中", "7", "٣", "½", " ", "  ", "\t", "\n", "\r\n",
                                         "\u3000", "'", "'s", "'ll", "!", ".", ",", "-", "_", "(", ")", "{", "🙂",
                                         "👍🏽", "\u0301", "$", "1.5", "x", "the", " the", "\u00a0"};
  std::mt19937 g(42);
  for (int k = 0; k < 300; ++k) {
    std::string s;
    const int len = 1 + static_cast<int>(g() % 40);
    for (int i = 0; i < len; ++i) s += pool[g() % pool.size()];
    v.push_back(s);
  }
  return v;
}

TEST(Gpt2Bpe, ByteToUnicodeMap) {
  EXPECT_EQ(gpt2_byte_to_unicode(0x00), U'\u0100');
  EXPECT_EQ(gpt2_byte_to_unicode(0x09), U'\u0109');
  EXPECT_EQ(gpt2_byte_to_unicode(0x0A), U'\u010A');
  EXPECT_EQ(gpt2_byte_to_unicode(0x20), U'\u0120');
  EXPECT_EQ(gpt2_byte_to_unicode(0x7F), U'\u0121');
  EXPECT_EQ(gpt2_byte_to_unicode(0xA0), U'\u0142');
  EXPECT_EQ(gpt2_byte_to_unicode(0xAD), U'\u0143');
  EXPECT_EQ(gpt2_byte_to_unicode('!'), U'!');
  EXPECT_EQ(gpt2_byte_to_unicode(0xFF), U'\u00FF');
}

TEST(Gpt2Bpe, PretokenizerPieces) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize("Hello  world"), (V{"Hello", " ", " world"}));
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize("hello\n\nhello"), (V{"hello", "\n", "\n", "hello"}));
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize("I'm x's"), (V{"I", "'m", " x", "'s"}));
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize("DON'T"), (V{"DON", "'", "T"}));
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize("a \tb"), (V{"a", " ", "\t", "b"}));
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize("x  \n"), (V{"x", "  \n"}));
  EXPECT_EQ(Gpt2BpeTokenizer::pretokenize(" 123 !?"), (V{" 123", " !?"}));
}

// Python's `regex` module is what GPT-2's own encoder uses: our scanner must cut the same pieces,
// including on characters where other regex engines disagree (U+0085, U+FEFF, U+001C).
TEST(Gpt2Bpe, PretokenizerMatchesPythonRegex) {
  if (!testing::python_has("regex")) GTEST_SKIP() << "python3-regex is not installed (apt-get install python3-regex)";
  auto corpus = varied_corpus();
  corpus.push_back("a\u0085b\ufeffc\x1c d\x1f");
  corpus.push_back("x\u0085 y \ufeff z");
  TempDir dir;
  const fs::path in = dir.path() / "in.json";
  write_file_atomic(in, nlohmann::json(corpus).dump());
  const std::string script =
      "import json,regex,sys\n"
      "pat=regex.compile(r\"\"\"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+\"\"\")\n"
      "texts=json.load(open(sys.argv[1],encoding='utf-8'))\n"
      "print(json.dumps([regex.findall(pat,t) for t in texts]))\n";
  write_file_atomic(dir.path() / "pretok.py", script);
  int rc = 0;
  const std::string out = testing::run_command(std::string(testing::kPython) + " " +
                                                   (dir.path() / "pretok.py").string() + " " + in.string(),
                                               &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto ref = nlohmann::json::parse(out);
  ASSERT_EQ(ref.size(), corpus.size());
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    std::vector<std::string> ours;
    for (auto p : Gpt2BpeTokenizer::pretokenize(corpus[i])) ours.emplace_back(p);
    EXPECT_EQ(nlohmann::json(ours), ref[i]) << "text #" << i << ": " << nlohmann::json(corpus[i]).dump();
  }
}

TEST(Gpt2Bpe, ReferenceVectors) {
  REQUIRE_GPT2_FILES();
  const auto& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.special_tokens().eod, 50256);
  using V = std::vector<std::int32_t>;
  EXPECT_EQ(t.encode("hello\n\nhello"), (V{31373, 198, 198, 31373}));
  EXPECT_EQ(t.encode("Hello world"), (V{15496, 995}));
  EXPECT_EQ(t.encode(" The quick brown fox."), (V{383, 2068, 7586, 21831, 13}));
  EXPECT_EQ(t.encode("It's 2023!  ok"), (V{1026, 338, 1160, 1954, 0, 220, 12876}));
  EXPECT_EQ(t.encode("a  b"), (V{64, 220, 275}));
  EXPECT_EQ(t.encode("Hello world, this is GPT-2!"), (V{15496, 995, 11, 428, 318, 402, 11571, 12, 17, 0}));
  EXPECT_EQ(t.encode("\n\n\n"), (V{628, 198}));
  EXPECT_EQ(t.encode("DON'T STOP"), (V{41173, 6, 51, 44934}));
  EXPECT_EQ(t.encode("🤖🎉👍🏽"), (V{8582, 97, 244, 8582, 236, 231, 41840, 235, 8582, 237, 121}));
  // Megatron treats a literal <|endoftext|> as text; the Hugging Face path splits it out.
  EXPECT_EQ(t.encode("<|endoftext|>"), (V{27, 91, 437, 1659, 5239, 91, 29}));
  Gpt2BpeOptions o;
  o.split_special_tokens = true;
  const Gpt2BpeTokenizer hf(vocab_path(), merges_path(), o);
  EXPECT_EQ(hf.encode("a<|endoftext|>b"), (V{64, 50256, 65}));
}

TEST(Gpt2Bpe, RoundTripsAnyBytes) {
  REQUIRE_GPT2_FILES();
  const auto& t = gpt2();
  auto corpus = varied_corpus();
  corpus.push_back(std::string("\xff\xfe invalid \xc3 utf8 \xe2\x82 \xf0\x9f\x98", 28));
  std::mt19937 g(7);
  for (int k = 0; k < 50; ++k) {
    std::string s(static_cast<std::size_t>(g() % 64), '\0');
    for (auto& c : s) c = static_cast<char>(g());
    corpus.push_back(s);
  }
  auto enc = t.make_encoder();
  for (const auto& s : corpus) {
    std::vector<std::int32_t> ids;
    enc->encode(s, ids);
    EXPECT_EQ(t.decode(ids), s);
    for (auto id : ids) ASSERT_TRUE(id >= 0 && id < 50257);
  }
  // errors='replace' on a cut sequence.
  EXPECT_EQ(sanitize_utf8(std::string("a\xe2\x82", 3)), "a\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8(std::string("\xff\xc3(", 3)), "\xEF\xBF\xBD\xEF\xBF\xBD(");
}

TEST(Gpt2Bpe, CacheDoesNotChangeResults) {
  REQUIRE_GPT2_FILES();
  Gpt2BpeOptions tiny;
  tiny.cache_max_bytes = 200;  // forces frequent cache clears
  const Gpt2BpeTokenizer t(vocab_path(), merges_path(), tiny);
  auto cached = t.make_encoder();
  for (const auto& s : varied_corpus()) {
    std::vector<std::int32_t> a, b;
    cached->encode(s, a);
    gpt2().make_encoder()->encode(s, b);
    ASSERT_EQ(a, b) << s;
  }
}

// The reference: js-tiktoken's GPT-2 encoding, on the varied corpus and on the whole demo corpus.
TEST(Gpt2Bpe, MatchesJsTiktoken) {
  REQUIRE_GPT2_FILES();
  const fs::path peer = testing::source_path("tools/peers/tiktoken_encode.js");
  if (!fs::exists(testing::source_path("tools/peers/node_modules/js-tiktoken/package.json"))) {
    GTEST_SKIP() << "js-tiktoken is not installed: run scripts/fetch_demo_data.sh --peers (needs the npm registry)";
  }
  auto corpus = varied_corpus();
  const fs::path moby = testing::source_path("data/demo/raw/moby_dick.txt");
  if (fs::exists(moby)) corpus.push_back(read_file(moby));
  TempDir dir;
  write_file_atomic(dir.path() / "in.json", nlohmann::json(corpus).dump());
  int rc = 0;
  const std::string out =
      testing::run_command("node " + peer.string() + " encode < " + (dir.path() / "in.json").string(), &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto ref = nlohmann::json::parse(out);
  ASSERT_EQ(ref.size(), corpus.size());
  auto enc = gpt2().make_encoder();
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    std::vector<std::int32_t> ids;
    enc->encode(corpus[i], ids);
    tokens += ids.size();
    EXPECT_EQ(nlohmann::json(ids), ref[i]) << "text #" << i << ": " << nlohmann::json(corpus[i]).dump().substr(0, 200);
  }
  EXPECT_GT(tokens, 1000u);
}

TEST(Gpt2Bpe, BatchEncodingIsIndependentOfThreads) {
  REQUIRE_GPT2_FILES();
  const auto corpus = varied_corpus();
  const std::vector<std::string_view> texts(corpus.begin(), corpus.end());
  const auto one = encode_batch(gpt2(), texts, 1);
  const auto four = encode_batch(gpt2(), texts, 4);
  ASSERT_EQ(one.size(), corpus.size());
  EXPECT_EQ(one, four);
  EXPECT_EQ(one[0], gpt2().encode(corpus[0]));
}

TEST(Gpt2Bpe, BadFilesAreNamed) {
  TempDir dir;
  write_file_atomic(dir.path() / "vocab.json", "{\"a\": 0, ");
  write_file_atomic(dir.path() / "merges.txt", "#version: 0.2\n");
  try {
    Gpt2BpeTokenizer t(dir.path() / "vocab.json", dir.path() / "merges.txt");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.json"), std::string::npos) << e.what();
  }
  REQUIRE_GPT2_FILES();
  write_file_atomic(dir.path() / "merges.txt", "#version: 0.2\nĠ t\nbad line here\n");
  try {
    Gpt2BpeTokenizer t(vocab_path(), dir.path() / "merges.txt");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("merges.txt:3:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bignlp::data
