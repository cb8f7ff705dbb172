#include "bignlp/data/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/sentence_splitter.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

// Training text: the demo corpus when fetched, otherwise a generated multilingual text.
std::string training_text() {
  const fs::path moby = testing::source_path("data/demo/raw/moby_dick.txt");
  if (fs::exists(moby)) return read_file(moby).substr(0, 300000);
  std::string s;
  const char* words[] = {"the", "whale", "ship", "sea", "Ahab", "captain", "día", "mar", "Meer", "Schiff", "海", "船"};
  for (int i = 0; i < 30000; ++i) s += std::string(words[(i * 7 + i / 13) % 12]) + ((i % 11 == 10) ? ".\n" : " ");
  return s;
}

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_file_atomic(dir_->path() / "train.txt", training_text());
    train_sentencepiece({{"input", (dir_->path() / "train.txt").string()},
                         {"model_prefix", (dir_->path() / "sp").string()},
                         {"model_type", "bpe"},
                         {"vocab_size", "800"},
                         {"character_coverage", "0.9995"},
                         {"pad_id", "0"},
                         {"unk_id", "1"},
                         {"bos_id", "2"},
                         {"eos_id", "3"},
                         {"minloglevel", "2"}});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
};
TempDir* SentencePieceTest::dir_ = nullptr;

TEST_F(SentencePieceTest, TrainLoadEncodeDecode) {
  ASSERT_TRUE(fs::exists(dir_->path() / "sp.model"));
  ASSERT_TRUE(fs::exists(dir_->path() / "sp.vocab"));
  const SentencePieceTokenizer t(dir_->path() / "sp.model");
  EXPECT_EQ(t.vocab_size(), 800);
  EXPECT_EQ(t.special_tokens().pad, 0);
  EXPECT_EQ(t.special_tokens().unk, 1);
  EXPECT_EQ(t.special_tokens().bos, 2);
  EXPECT_EQ(t.special_tokens().eos, 3);
  EXPECT_EQ(t.special_tokens().eod, 3);
  const std::string text = "Call me Ishmael. Some years ago, never mind how long precisely.";
  const auto ids = t.encode(text);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.token_to_id("<unk>"), 1);
  EXPECT_FALSE(t.token_to_id("no-such-piece-xyz").has_value());
}

// Ids from our wrapper equal the Python binding's on the same model.
TEST_F(SentencePieceTest, MatchesPythonSentencepiece) {
  if (!testing::python_has("sentencepiece")) {
    GTEST_SKIP() << "python3-sentencepiece is not installed (apt-get install python3-sentencepiece)";
  }
  const SentencePieceTokenizer t(dir_->path() / "sp.model");
  std::vector<std::string> texts = {"Call me Ishmael.", "  leading spaces and trailing  ", "naïve café 日本語 🐳",
                                    "", "numbers 12345 and punctuation!?", "Tab\tand\nnewline"};
  const std::string body = training_text();
  for (std::size_t i = 0; i + 2000 < body.size() && texts.size() < 40; i += 7919) texts.push_back(body.substr(i, 500));
  // Cut on valid UTF-8 boundaries only.
  for (auto& s : texts) {
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
    while (!s.empty() && (static_cast<unsigned char>(s.front()) & 0xC0) == 0x80) s.erase(0, 1);
  }
  write_file_atomic(dir_->path() / "texts.json", nlohmann::json(texts).dump());
  const std::string script =
      "import json,sys,sentencepiece as spm\n"
      "sp=spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
      "print(json.dumps([sp.encode(t) for t in json.load(open(sys.argv[2],encoding='utf-8'))]))\n";
  write_file_atomic(dir_->path() / "peer.py", script);
  int rc = 0;
  const std::string out = testing::run_command(std::string(testing::kPython) + " " + (dir_->path() / "peer.py").string() +
                                                   " " + (dir_->path() / "sp.model").string() + " " +
                                                   (dir_->path() / "texts.json").string(),
                                               &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto ref = nlohmann::json::parse(out);
  ASSERT_EQ(ref.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(nlohmann::json(t.encode(texts[i])), ref[i]) << texts[i];
}

TEST(SentencePiece, ErrorsNameTheFile) {
  TempDir dir;
  EXPECT_THROW(SentencePieceTokenizer(dir.path() / "none.model"), IoError);
  write_file_atomic(dir.path() / "bad.model", "not a model");
  try {
    SentencePieceTokenizer t(dir.path() / "bad.model");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.model"), std::string::npos);
  }
  EXPECT_THROW(train_sentencepiece({{"model_prefix", "x"}}), ConfigError);
  EXPECT_THROW(train_sentencepiece({{"input", (dir.path() / "none.txt").string()},
                                    {"model_prefix", (dir.path() / "m").string()},
                                    {"no_such_option", "1"}}),
               ConfigError);
}

TEST(SentenceSplitter, Rules) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(split_sentences("Hello there. General Kenobi! How are you? fine"),
            (V{"Hello there.", "General Kenobi!", "How are you? fine"}));
  EXPECT_EQ(split_sentences("Mr. Smith met Dr. Jones at 5 p.m. on Main St. He left."),
            (V{"Mr. Smith met Dr. Jones at 5 p.m. on Main St. He left."}));
  EXPECT_EQ(split_sentences("It was J. R. R. Tolkien. Then \"Quote.\" Next one."),
            (V{"It was J. R. R. Tolkien.", "Then \"Quote.\"", "Next one."}));
  EXPECT_EQ(split_sentences("Pi is 3.14. Yes.\nNew line\nstays."), (V{"Pi is 3.14.", "Yes.", "New line\nstays."}));
  EXPECT_EQ(split_sentences("Go.\n\nRun.", true), (V{"Go.\n\n", "Run."}));
  EXPECT_EQ(split_sentences("Go.\n\nRun."), (V{"Go.", "Run."}));
  EXPECT_EQ(split_sentences("   "), V{});
  EXPECT_EQ(split_sentences("Wait... What?! Ok."), (V{"Wait...", "What?!", "Ok."}));
}

}  // namespace
}  // namespace bignlp::data
