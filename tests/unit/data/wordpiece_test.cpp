#include "bignlp/data/wordpiece.h"

#include <gtest/gtest.h>

#include "bignlp/core/file_io.h"
#include "bignlp/data/tokenizer_factory.h"
#include "bignlp/core/error.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

// The vocabulary of BERT's own WordPiece unit test.
class WordPieceSmall : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file_atomic(dir_.path() / "vocab.txt",
                      "[UNK]\n[CLS]\n[SEP]\nwant\n##want\n##ed\nwa\nun\nrunn\n##ing\n,\nlow\nlowest\n");
  }
  WordPieceTokenizer make(bool lower) {
    WordPieceOptions o;
    o.lower_case = lower;
    return WordPieceTokenizer(dir_.path() / "vocab.txt", o);
  }
  TempDir dir_;
};

TEST_F(WordPieceSmall, GreedyLongestMatchFirst) {
  const auto t = make(true);
  std::vector<std::int32_t> ids;
  t.wordpiece("unwanted", ids);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{7, 4, 5}));  // un ##want ##ed
  ids.clear();
  t.wordpiece("unwantedX", ids);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{0}));  // no piece for "X": the whole word is [UNK]
  EXPECT_EQ(t.encode("UNwant\u00E9d,running"), (std::vector<std::int32_t>{7, 4, 5, 10, 8, 9}));
  EXPECT_EQ(t.decode(t.encode("unwanted running")), "unwanted running");
  EXPECT_EQ(t.special_tokens().eod, 2);  // [SEP]
}

TEST_F(WordPieceSmall, BasicTokenizerRules) {
  const auto lower = make(true);
  const auto cased = make(false);
  EXPECT_EQ(lower.basic_tokenize(" \tHeLLo!how  \n Are yoU?  "), (Strings{"hello", "!", "how", "are", "you", "?"}));
  EXPECT_EQ(lower.basic_tokenize("H\u00E9llo"), (Strings{"hello"}));
  EXPECT_EQ(cased.basic_tokenize(" \tHeLLo!how  \n Are yoU?  "), (Strings{"HeLLo", "!", "how", "Are", "yoU", "?"}));
  EXPECT_EQ(cased.basic_tokenize("H\u00E9llo"), (Strings{"H\u00E9llo"}));
  EXPECT_EQ(lower.basic_tokenize("ah\u535A\u63A8zz"), (Strings{"ah", "\u535A", "\u63A8", "zz"}));
  // Controls and NUL are dropped, U+FFFD too; Zs spaces separate words; U+2028 splits (Python's split).
  EXPECT_EQ(cased.basic_tokenize("a\x01" "b\u00A0c\u2028d\uFFFDe"), (Strings{"ab", "c", "de"}));
  // Without keep_special_tokens, "[SEP]" is punctuation + word + punctuation (Megatron).
  EXPECT_EQ(cased.basic_tokenize("x [SEP] y"), (Strings{"x", "[", "SEP", "]", "y"}));
  WordPieceOptions keep;
  keep.keep_special_tokens = true;
  const WordPieceTokenizer hf(dir_.path() / "vocab.txt", keep);
  EXPECT_EQ(hf.basic_tokenize("x [SEP] y"), (Strings{"x", "[SEP]", "y"}));
}

TEST_F(WordPieceSmall, LongWordsAreUnknown) {
  WordPieceOptions o;
  o.max_input_chars_per_word = 5;
  const WordPieceTokenizer t(dir_.path() / "vocab.txt", o);
  std::vector<std::int32_t> ids;
  t.wordpiece("lowest", ids);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{0}));
  ids.clear();
  t.wordpiece("low", ids);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{11}));
}

// Known bert-base-uncased ids (the vocab is rebuilt byte-exactly by fetch_demo_data.sh --peers).
TEST(WordPieceBertUncased, KnownVectors) {
  const fs::path vocab = testing::source_path("data/bert/bert-base-uncased-vocab.txt");
  if (!fs::exists(vocab)) GTEST_SKIP() << "BERT uncased vocab not found: run scripts/fetch_demo_data.sh --peers";
  TokenizerSpec spec;
  spec.type = "BertWordPieceLowerCase";
  spec.vocab_file = vocab;
  const auto t = load_tokenizer(spec);
  EXPECT_EQ(t->vocab_size(), 30522);
  EXPECT_EQ(t->encode("i like strawberries"), (std::vector<std::int32_t>{1045, 2066, 13137, 20968}));
  EXPECT_EQ(t->encode("Hello world, this is GPT-2!"),
            (std::vector<std::int32_t>{7592, 2088, 1010, 2023, 2003, 14246, 2102, 1011, 1016, 999}));
  const auto* wp = dynamic_cast<const WordPieceTokenizer*>(t.get());
  ASSERT_NE(wp, nullptr);
  std::vector<std::int32_t> ids;
  wp->wordpiece("unaffable", ids);
  std::vector<std::string> pieces;
  for (auto id : ids) pieces.push_back(wp->id_to_token(id));
  EXPECT_EQ(pieces, (Strings{"una", "##ffa", "##ble"}));
  EXPECT_EQ(t->special_tokens().cls, 101);
  EXPECT_EQ(t->special_tokens().sep, 102);
  EXPECT_EQ(t->special_tokens().mask, 103);
  EXPECT_EQ(t->special_tokens().unk, 100);
  EXPECT_EQ(t->special_tokens().pad, 0);
}

TEST(TokenizerFactory, UnknownNamesSuggest) {
  TokenizerSpec spec;
  spec.type = "GPT2BPETokeniser";
  try {
    load_tokenizer(spec);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'GPT2BPETokenizer'"), std::string::npos) << e.what();
  }
  spec.library = "hf";
  EXPECT_THROW(load_tokenizer(spec), ConfigError);
  spec.library = "megatron";
  spec.type = "GPT2BPETokenizer";
  EXPECT_THROW(load_tokenizer(spec), ConfigError);  // no vocab file
}

}  // namespace
}  // namespace bignlp::data
