#include "bignlp/data/preprocess.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/gpt2_bpe.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/wordpiece.h"
#include "compress_support.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

// A tiny lower-case WordPiece vocabulary: ids are line numbers.
const std::vector<std::string> kVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on",
                                         "mat", ".", "a", "dog", "##s", "hello", "world", "!", ",", "it", "ran"};

class PreprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string v;
    for (const auto& t : kVocab) v += t + "\n";
    write_file_atomic(dir_.path() / "vocab.txt", v);
    WordPieceOptions o;
    o.lower_case = true;
    tok_ = std::make_unique<WordPieceTokenizer>(dir_.path() / "vocab.txt", o);
  }
  PreprocessOptions options(const std::vector<fs::path>& inputs, const std::string& out = "out/ds") {
    PreprocessOptions o;
    o.inputs = inputs;
    o.output_prefix = dir_.path() / out;
    o.progress = ProgressMode::kOff;
    o.workers = 2;
    return o;
  }
  // Every document of a dataset as its token lists.
  static std::vector<std::vector<std::vector<std::int64_t>>> read_docs(const fs::path& prefix) {
    IndexedDataset ds(prefix);
    std::vector<std::vector<std::vector<std::int64_t>>> docs;
    const auto d = ds.doc_idx();
    for (std::size_t k = 0; k + 1 < d.size(); ++k) {
      std::vector<std::vector<std::int64_t>> doc;
      for (auto s = d[k]; s < d[k + 1]; ++s) doc.push_back(ds.get(static_cast<std::size_t>(s)));
      docs.push_back(doc);
    }
    return docs;
  }
  TempDir dir_;
  Logger log_ = Logger::capturing();
  std::unique_ptr<WordPieceTokenizer> tok_;
};

using Docs = std::vector<std::vector<std::vector<std::int64_t>>>;

TEST_F(PreprocessTest, MegatronDocumentSemantics) {
  write_file_atomic(dir_.path() / "in.jsonl",
                    "{\"text\": \"The cat sat.\", \"title\": \"hello\"}\n"
                    "{\"text\": \"\", \"title\": \"world\"}\n"          // no tokens: skipped for 'text'
                    "\n"                                                  // blank line: ignored
                    "{\"title\": \"a\", \"text\": \"A dog ran!\"}\n");
  auto o = options({dir_.path() / "in.jsonl"});
  o.json_keys = {"text", "title"};
  o.append_eod = true;
  const auto stats = preprocess(o, *tok_, log_);
  EXPECT_EQ(stats.records, 3u);
  EXPECT_EQ(stats.blank_records, 1u);
  EXPECT_EQ(stats.empty_documents, 1u);
  ASSERT_EQ(stats.outputs.size(), 2u);
  EXPECT_EQ(stats.outputs[0], dir_.path() / "out/ds_text_document");
  // text: the cat sat . [SEP]; a dog ran ! [SEP]
  EXPECT_EQ(read_docs(dir_.path() / "out/ds_text_document"), (Docs{{{5, 6, 7, 10, 3}}, {{11, 12, 19, 16, 3}}}));
  EXPECT_EQ(read_docs(dir_.path() / "out/ds_title_document"), (Docs{{{14, 3}}, {{15, 3}}, {{11, 3}}}));
  EXPECT_EQ(IndexedDataset(dir_.path() / "out/ds_text_document").dtype(), TokenDType::kUint16);
}

TEST_F(PreprocessTest, SentenceLevelOutput) {
  write_file_atomic(dir_.path() / "in.jsonl", "{\"text\": \"The cat sat. It ran! A dog.\"}\n{\"text\": \"hello world\"}\n");
  auto o = options({dir_.path() / "in.jsonl"});
  o.split_sentences = true;
  preprocess(o, *tok_, log_);
  EXPECT_EQ(read_docs(dir_.path() / "out/ds_text_sentence"),
            (Docs{{{5, 6, 7, 10}, {18, 19, 16}, {11, 12, 10}}, {{14, 15}}}));
}

// The output must not depend on the number of workers or how the input is cut into chunks.
TEST_F(PreprocessTest, OutputIndependentOfWorkersAndChunking) {
  std::string text;
  const std::vector<std::string> words = {"the", "cat", "sat", "on", "mat", "dog", "hello", "world", "!", ","};
  for (int i = 0; i < 3000; ++i) {
    std::string doc;
    for (int k = 0; k < 1 + (i * 7) % 23; ++k) doc += words[static_cast<std::size_t>((i + k * 3) % 10)] + " ";
    text += nlohmann::json({{"text", doc}}).dump() + "\n";
  }
  write_file_atomic(dir_.path() / "in.jsonl", text);
  auto a = options({dir_.path() / "in.jsonl"}, "a");
  a.workers = 1;
  preprocess(a, *tok_, log_);
  auto b = options({dir_.path() / "in.jsonl"}, "b");
  b.workers = 4;
  b.chunk_records = 7;
  b.chunk_bytes = 512;
  preprocess(b, *tok_, log_);
  EXPECT_EQ(read_file(dir_.path() / "a_text_document.bin"), read_file(dir_.path() / "b_text_document.bin"));
  EXPECT_EQ(read_file(dir_.path() / "a_text_document.idx"), read_file(dir_.path() / "b_text_document.idx"));
  EXPECT_EQ(IndexedDataset(dir_.path() / "a_text_document").num_documents(), 3000u);
}

TEST_F(PreprocessTest, CompressedInputsAndFolders) {
  const std::string a = "{\"text\": \"the cat\"}\n{\"text\": \"the dog\"}\n";
  const std::string b = "{\"text\": \"hello world\"}\n";
  fs::create_directories(dir_.path() / "in" / "sub");
  write_file_atomic(dir_.path() / "in" / "a.jsonl.zst", testing::zstd_compress(a));
  write_file_atomic(dir_.path() / "in" / "sub" / "b.json.gz", testing::gzip_compress(b));
  write_file_atomic(dir_.path() / "in" / "notes.md", "ignored");
  auto o = options({dir_.path() / "in"});
  o.preproc_folder = true;
  o.files_filter = "**/*.json*";
  const auto stats = preprocess(o, *tok_, log_);
  EXPECT_EQ(stats.bytes, a.size() + b.size());
  EXPECT_EQ(read_docs(dir_.path() / "out/ds_text_document"), (Docs{{{5, 6}}, {{5, 12}}, {{14, 15}}}));
}

TEST_F(PreprocessTest, PlainTextModes) {
  write_file_atomic(dir_.path() / "in.txt", "the cat\nsat on\n\n\nthe mat\n");
  auto o = options({dir_.path() / "in.txt"}, "line");
  preprocess(o, *tok_, log_);
  EXPECT_EQ(read_docs(dir_.path() / "line_text_document"), (Docs{{{5, 6}}, {{7, 8}}, {{5, 9}}}));
  o = options({dir_.path() / "in.txt"}, "para");
  o.text_mode = TextMode::kParagraph;
  preprocess(o, *tok_, log_);
  EXPECT_EQ(read_docs(dir_.path() / "para_text_document"), (Docs{{{5, 6, 7, 8}}, {{5, 9}}}));
  o = options({dir_.path() / "in.txt"}, "file");
  o.text_mode = TextMode::kFile;
  preprocess(o, *tok_, log_);
  EXPECT_EQ(read_docs(dir_.path() / "file_text_document"), (Docs{{{5, 6, 7, 8, 5, 9}}}));
}

TEST_F(PreprocessTest, BadRecordsAreCountedAndReportedWithFileAndLine) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "{\"text\": \"the cat\"}\n";
  text += "{\"text\": \"the cat\"\n";      // line 201: malformed
  text += "{\"title\": \"x\"}\n";           // line 202: missing key
  text += "{\"text\": 5}\n";                // line 203: not a string
  text += "[1, 2]\n";                       // line 204: not an object
  write_file_atomic(dir_.path() / "in.jsonl", text);
  auto o = options({dir_.path() / "in.jsonl"});
  o.max_bad_fraction = 0.05;
  const auto stats = preprocess(o, *tok_, log_);
  EXPECT_EQ(stats.bad_records, 4u);
  EXPECT_EQ(stats.documents, 200u);
  const std::string logged = log_.captured();
  const std::string file = (dir_.path() / "in.jsonl").string();
  EXPECT_NE(logged.find(file + ":201: malformed JSON"), std::string::npos) << logged;
  EXPECT_NE(logged.find(file + ":202: missing key 'text'"), std::string::npos) << logged;
  EXPECT_NE(logged.find(file + ":203: the value of 'text' is not a string"), std::string::npos) << logged;
  EXPECT_NE(logged.find(file + ":204: not a JSON object"), std::string::npos) << logged;
  EXPECT_NE(logged.find("4 of 204 records were bad"), std::string::npos) << logged;

  // Above the limit: the run fails with the summary and leaves nothing behind.
  o.output_prefix = dir_.path() / "strict" / "ds";
  o.max_bad_fraction = 0.01;
  try {
    preprocess(o, *tok_, log_);
    FAIL() << "expected a failure";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("4 of 204 records were bad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1 malformed JSON"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir_.path() / "strict"));
}

TEST_F(PreprocessTest, TruncatedZstdFailsNamingTheFileAndLeavesNoOutput) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "{\"text\": \"the cat sat on the mat " + std::to_string(i) + "\"}\n";
  const std::string zst = testing::zstd_compress(text);
  write_file_atomic(dir_.path() / "cut.jsonl.zst", zst.substr(0, zst.size() - 40));
  auto o = options({dir_.path() / "cut.jsonl.zst"}, "cut/ds");
  try {
    preprocess(o, *tok_, log_);
    FAIL() << "expected a failure";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.jsonl.zst"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(!fs::exists(dir_.path() / "cut") || fs::is_empty(dir_.path() / "cut"));
}

TEST_F(PreprocessTest, UsageErrors) {
  auto o = options({dir_.path() / "missing.jsonl"});
  EXPECT_THROW(preprocess(o, *tok_, log_), IoError);
  fs::create_directories(dir_.path() / "folder");
  o = options({dir_.path() / "folder"});
  EXPECT_THROW(preprocess(o, *tok_, log_), IoError);
  o.preproc_folder = true;
  EXPECT_THROW(preprocess(o, *tok_, log_), UsageError);  // nothing matches
}

TEST(Glob, Patterns) {
  EXPECT_TRUE(glob_match("**/*.json*", "a.jsonl"));
  EXPECT_TRUE(glob_match("**/*.json*", "x/y/a.json.gz"));
  EXPECT_FALSE(glob_match("**/*.json*", "x/y/a.txt"));
  EXPECT_TRUE(glob_match("*.txt", "a.txt"));
  EXPECT_FALSE(glob_match("*.txt", "d/a.txt"));
  EXPECT_TRUE(glob_match("c4-??.json.gz", "c4-en.json.gz"));
}

TEST(PreprocessGpt2, AppendsEndOfText) {
  const fs::path vocab = testing::source_path("data/bpe/vocab.json");
  const fs::path merges = testing::source_path("data/bpe/merges.txt");
  if (!fs::exists(vocab)) GTEST_SKIP() << "GPT-2 files not found: run scripts/fetch_demo_data.sh";
  TempDir dir;
  write_file_atomic(dir.path() / "in.jsonl", "{\"text\": \"Hello world\"}\n{\"text\": \" The quick brown fox.\"}\n");
  const Gpt2BpeTokenizer tok(vocab, merges);
  PreprocessOptions o;
  o.inputs = {dir.path() / "in.jsonl"};
  o.output_prefix = dir.path() / "my-gpt3_00";
  o.append_eod = true;
  o.progress = ProgressMode::kOff;
  const Logger log = Logger::capturing();
  preprocess(o, tok, log);
  IndexedDataset ds(dir.path() / "my-gpt3_00_text_document");
  EXPECT_EQ(ds.get(0), (std::vector<std::int64_t>{15496, 995, 50256}));
  EXPECT_EQ(ds.get(1), (std::vector<std::int64_t>{383, 2068, 7586, 21831, 13, 50256}));
}

// The program itself: flags, outputs and exit codes.
TEST(PreprocessCli, RunsAndFailsWithExitCodes) {
  TempDir dir;
  write_file_atomic(dir.path() / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\n");
  write_file_atomic(dir.path() / "in.jsonl", "{\"text\": \"The cat\"}\n");
  const std::string bin = BIGNLP_PREPROCESS_BIN;
  int rc = -1;
  std::string out = testing::run_command(bin + " --input " + (dir.path() / "in.jsonl").string() + " --output-prefix " +
                                             (dir.path() / "o").string() +
                                             " --tokenizer-type BertWordPieceLowerCase --vocab-file " +
                                             (dir.path() / "vocab.txt").string() + " --append-eod --workers 2 2>&1",
                                         &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(IndexedDataset(dir.path() / "o_text_document").get(0), (std::vector<std::int64_t>{5, 6, 3}));
  out = testing::run_command(bin + " --input " + (dir.path() / "nope.jsonl").string() + " --output-prefix " +
                                 (dir.path() / "o2").string() + " --tokenizer-type BertWordPieceCase --vocab-file " +
                                 (dir.path() / "vocab.txt").string() + " 2>&1",
                             &rc);
  EXPECT_EQ(rc, static_cast<int>(ExitCode::kIo)) << out;
  EXPECT_NE(out.find("nope.jsonl"), std::string::npos) << out;
  out = testing::run_command(bin + " --tokenizer-type NoSuchTokenizer 2>&1", &rc);
  EXPECT_EQ(rc, static_cast<int>(ExitCode::kUsage)) << out;
  // Merging two datasets.
  out = testing::run_command(bin + " --merge-inputs " + (dir.path() / "o_text_document").string() + "," +
                                 (dir.path() / "o_text_document").string() + " --output-prefix " +
                                 (dir.path() / "merged").string() + " 2>&1",
                             &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(IndexedDataset(dir.path() / "merged").num_documents(), 2u);
}

}  // namespace
}  // namespace bignlp::data
