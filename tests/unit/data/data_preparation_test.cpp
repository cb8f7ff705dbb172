// The data preparation flows end to end on tiny local files, served over HTTP from 127.0.0.1.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/custom_dataset_preparation.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/mc4_preparation.h"
#include "bignlp/data/pile_preparation.h"
#include "bignlp/data/sentencepiece_tokenizer.h"
#include "bignlp/data/wordpiece.h"
#include "bignlp/data/worker_position.h"
#include "compress_support.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

const char* kWords[] = {"the", "cat", "sat", "on", "mat", "a", "dog", "ran", "hello", "world"};

std::string jsonl_docs(int n, int seed) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int k = 0; k < 3 + (i + seed) % 9; ++k) text += std::string(kWords[(i * 3 + k + seed) % 10]) + " ";
    out += nlohmann::json({{"text", text}, {"meta", {{"pile_set_name", "test"}}}}).dump() + "\n";
  }
  return out;
}

std::string bert_vocab() {
  std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const char* w : kWords) v += std::string(w) + "\n";
  return v;
}

std::vector<std::vector<std::int64_t>> all_sequences(const fs::path& prefix) {
  IndexedDataset ds(prefix);
  std::vector<std::vector<std::int64_t>> out;
  for (std::size_t i = 0; i < ds.num_sequences(); ++i) out.push_back(ds.get(i));
  return out;
}

TEST(WorkerPosition, SlotsAndItems) {
  WorkerPosition array;
  array.array_task_id = 2;
  array.local_rank = 1;
  EXPECT_EQ(worker_slots(array, 4, 20), (std::vector<int>{9}));
  EXPECT_THROW(worker_slots(array, 4, 8), ConfigError);
  EXPECT_EQ(worker_items(array, {0, 2, 5}), (std::vector<int>{2}));
  EXPECT_THROW(worker_items(array, {0, 3}), ConfigError);
  WorkerPosition bcp;
  bcp.rank = 1;
  bcp.world_size = 3;
  EXPECT_EQ(worker_slots(bcp, 4, 8), (std::vector<int>{1, 4, 7}));
  EXPECT_EQ(worker_items(bcp, {0, 3, 5, 6, 7}), (std::vector<int>{3, 7}));
  const auto bins = balance_by_size({10, 1, 7, 7, 3, 2}, 2);
  EXPECT_EQ(bins[0], (std::vector<std::size_t>{0, 4, 5}));  // 10 + 3 + 2
  EXPECT_EQ(bins[1], (std::vector<std::size_t>{1, 2, 3}));  // 7 + 7 + 1
}

class PileFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::python_has("http.server")) GTEST_SKIP() << "/usr/bin/python3 is needed for the test HTTP server";
    // The "internet": two shards and the tokenizer vocabulary.
    write_file_atomic(remote_.path() / "pile" / "00.jsonl.zst", testing::zstd_compress(jsonl_docs(300, 0)));
    write_file_atomic(remote_.path() / "pile" / "03.jsonl.zst", testing::zstd_compress(jsonl_docs(200, 5)));
    write_file_atomic(remote_.path() / "vocab" / "bert-large-cased-vocab.txt", bert_vocab());
    server_ = std::make_unique<testing::TestHttpServer>(remote_.path());
    ASSERT_TRUE(server_->ok());
    c_.the_pile_url = server_->url("drop") + "pile/";  // every first request drops midway: resumed
    c_.data_dir = local_.path() / "the_pile_t5";
    c_.output_prefix = "my-t5";
    c_.tokenizer_type = "BertWordPieceCase";
    c_.download_vocab_url = server_->url("ok") + "vocab/bert-large-cased-vocab.txt";
    c_.vocab_save_dir = local_.path() / "bpe";
    c_.merges_save_dir = local_.path() / "bpe";
    c_.workers = 2;
    c_.progress = ProgressMode::kOff;
    c_.download.initial_backoff_seconds = 0.05;
  }
  TempDir remote_, local_;
  std::unique_ptr<testing::TestHttpServer> server_;
  PileConfig c_;
  Logger log_ = Logger::capturing();
};

TEST_F(PileFlowTest, DownloadExtractPreprocessPerArrayElement) {
  WorkerPosition pos;
  for (int element : {0, 3}) {  // the array index is the file number
    pos.array_task_id = element;
    for (int n : worker_items(pos, {0, 3})) {
      pile_download(c_, n, log_);
      pile_extract(c_, n, log_);
      pile_preprocess(c_, n, log_);
    }
  }
  EXPECT_TRUE(fs::exists(local_.path() / "bpe" / "vocab.txt"));
  // rm_downloaded and rm_extracted leave only the datasets.
  for (const char* gone : {"00.jsonl.zst", "00.jsonl", "03.jsonl.zst", "03.jsonl"}) {
    EXPECT_FALSE(fs::exists(c_.data_dir / gone)) << gone;
  }
  // Same content as preprocessing the original text directly.
  write_file_atomic(local_.path() / "direct.jsonl", jsonl_docs(300, 0));
  WordPieceOptions wo;
  const WordPieceTokenizer tok(local_.path() / "bpe" / "vocab.txt", wo);
  PreprocessOptions o;
  o.inputs = {local_.path() / "direct.jsonl"};
  o.output_prefix = local_.path() / "direct";
  o.append_eod = true;
  o.progress = ProgressMode::kOff;
  preprocess(o, tok, log_);
  EXPECT_EQ(all_sequences(c_.data_dir / "my-t5_00_text_document"), all_sequences(local_.path() / "direct_text_document"));
  EXPECT_EQ(IndexedDataset(c_.data_dir / "my-t5_03_text_document").num_documents(), 200u);
  EXPECT_NE(log_.captured().find("resumed"), std::string::npos) << log_.captured();
  // Rerunning every step is a no-op.
  pile_download(c_, 0, log_);
  pile_extract(c_, 0, log_);
  pile_preprocess(c_, 0, log_);
  EXPECT_NE(log_.captured().find("already preprocessed"), std::string::npos);
}

TEST_F(PileFlowTest, TruncatedShardIsReportedByName) {
  c_.the_pile_url = server_->url("short") + "pile/";  // the server's file is cut in half
  pile_download(c_, 0, log_);
  try {
    pile_extract(c_, 0, log_);
    FAIL() << "expected an error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("00.jsonl.zst"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(c_.data_dir / "00.jsonl"));
  EXPECT_THROW(pile_preprocess(c_, 0, log_), DataError);  // reading the .zst directly fails the same way
  EXPECT_FALSE(indexed_dataset_exists(pile_dataset_prefix(c_, 0)));
}

TEST_F(PileFlowTest, MissingShardAndVocabErrors) {
  EXPECT_THROW(pile_extract(c_, 7, log_), IoError);
  EXPECT_THROW(pile_download(c_, 7, log_), IoError);  // 404 for 07.jsonl.zst
  PileConfig no_vocab = c_;
  no_vocab.download_vocab_url.clear();
  no_vocab.vocab_save_dir = local_.path() / "nowhere";
  EXPECT_THROW(pile_download(no_vocab, 0, log_), ConfigError);
}

class Mc4FlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::python_has("http.server")) GTEST_SKIP() << "/usr/bin/python3 is needed for the test HTTP server";
    // The remote repository: real files; the local checkout: LFS pointers with their sizes.
    const std::vector<std::string> files = {
        "multilingual/c4-lv.tfrecord-00000-of-00002.json.gz", "multilingual/c4-lv.tfrecord-00001-of-00002.json.gz",
        "multilingual/c4-et.tfrecord-00000-of-00001.json.gz", "multilingual/c4-en.tfrecord-00000-of-00001.json.gz",
        "multilingual/c4-lv-validation.tfrecord-00000-of-00001.json.gz", "en/c4-train.00000-of-01024.json.gz",
        "en/c4-train.00001-of-01024.json.gz"};
    int seed = 0;
    for (const auto& f : files) {
      const std::string gz = testing::gzip_compress(jsonl_docs(40 + 10 * seed, seed));
      ++seed;
      write_file_atomic(remote_.path() / f, gz);
      write_file_atomic(local_.path() / "lfs" / f,
                        fmt::format("version https://git-lfs.github.com/spec/v1\noid sha256:{:064x}\nsize {}\n", seed,
                                    gz.size()));
    }
    // A SentencePiece model served like the real one.
    std::string text;
    for (int i = 0; i < 20; ++i) text += jsonl_docs(50, i);
    write_file_atomic(local_.path() / "sp_train.txt", text);
    train_sentencepiece({{"input", (local_.path() / "sp_train.txt").string()},
                         {"model_prefix", (remote_.path() / "sentencepiece").string()},
                         {"vocab_size", "60"},
                         {"model_type", "bpe"},
                         {"minloglevel", "2"}});
    server_ = std::make_unique<testing::TestHttpServer>(remote_.path());
    ASSERT_TRUE(server_->ok());
    c_.mc4_dir = local_.path() / "mc4";
    c_.git_lfs_dir = local_.path() / "lfs";
    c_.c4_download_url = server_->url("flaky");  // each file's first two requests fail with 503
    c_.languages = {"lv", "et", "en"};
    c_.softlinks_dir = c_.mc4_dir / "softlinks";
    c_.preprocessed_dir = c_.mc4_dir / "preprocessed";
    c_.max_split_size_gb = 1.0 / (1 << 23);  // 128 bytes: one split per file
    c_.download_worker_mapping = c_.mc4_dir / "download_mapping";
    c_.preprocess_worker_mapping = c_.mc4_dir / "preprocess_mapping";
    c_.download_tokenizer_url = server_->url("ok") + "sentencepiece.model";
    c_.tokenizer_model = c_.mc4_dir / "bpe" / "mt5_tokenizer.model";
    c_.vocab_save_dir = c_.mc4_dir / "bpe";
    c_.node_array_size = 2;
    c_.workers_per_node = 2;
    c_.progress = ProgressMode::kOff;
    c_.download.initial_backoff_seconds = 0.02;
  }
  TempDir remote_, local_;
  std::unique_ptr<testing::TestHttpServer> server_;
  Mc4Config c_;
  Logger log_ = Logger::capturing();
};

TEST_F(Mc4FlowTest, AllStepsOverArraysOfWorkers) {
  const auto files = mc4_list_files(c_);
  ASSERT_EQ(files.size(), 5u);  // lv x2, et, cleaned en x2; no validation, no multilingual en
  mc4_prepare(c_, log_);
  EXPECT_TRUE(fs::exists(c_.tokenizer_model));
  WorkerPosition pos;
  for (int node = 0; node < c_.node_array_size; ++node) {
    pos.array_task_id = node;
    for (int w : worker_slots(pos, 1, c_.node_array_size)) mc4_download(c_, w, log_);
  }
  mc4_setup_preprocess(c_, log_);
  EXPECT_TRUE(fs::is_symlink(c_.softlinks_dir / "lv" / "lv_000" / "c4-lv.tfrecord-00000-of-00002.json.gz"));
  for (int node = 0; node < c_.node_array_size; ++node) {
    for (int local = 0; local < c_.workers_per_node; ++local) {
      pos.array_task_id = node;
      pos.local_rank = local;
      for (int s : worker_slots(pos, c_.workers_per_node, c_.node_array_size * c_.workers_per_node)) {
        mc4_preprocess(c_, s, log_);
      }
    }
  }
  // Every split became a dataset named <lang>_<NNN>; together they hold every document.
  std::uint64_t docs = 0;
  int datasets = 0;
  for (const auto& e : fs::directory_iterator(c_.preprocessed_dir)) {
    if (e.path().extension() != ".idx") continue;
    const std::string name = e.path().stem().string();
    EXPECT_TRUE(name.starts_with("lv_") || name.starts_with("et_") || name.starts_with("en_")) << name;
    IndexedDataset ds(e.path().parent_path() / e.path().stem());
    EXPECT_EQ(ds.dtype(), TokenDType::kUint16);
    docs += ds.num_documents();
    ++datasets;
  }
  EXPECT_EQ(datasets, 5);  // lv_000, lv_001, et_000, en_000, en_001
  std::uint64_t expected = 0;
  for (int seed : {0, 1, 2, 5, 6}) expected += static_cast<std::uint64_t>(40 + 10 * seed);
  EXPECT_EQ(docs, expected);
}

TEST_F(Mc4FlowTest, SetupBeforeDownloadAndUnknownLanguageFail) {
  mc4_prepare(c_, log_);
  EXPECT_THROW(mc4_setup_preprocess(c_, log_), DataError);  // still LFS pointers
  Mc4Config bad = c_;
  bad.languages = {"xx"};
  EXPECT_THROW(mc4_list_files(bad), ConfigError);
}

TEST_F(Mc4FlowTest, PrepareClonesTheRepositoryWithGit) {
  int rc = 0;
  testing::run_command("git --version >/dev/null 2>&1", &rc);
  if (rc != 0) GTEST_SKIP() << "git is not installed";
  const fs::path repo = local_.path() / "origin";
  fs::create_directories(repo);
  fs::copy(local_.path() / "lfs", repo, fs::copy_options::recursive);
  const std::string git = "git -C " + repo.string() + " ";
  testing::run_command(git + "init -q && " + git + "add -A && " + git +
                           "-c user.name=t -c user.email=t@t commit -qm pointers", &rc);
  ASSERT_EQ(rc, 0);
  Mc4Config c = c_;
  c.git_lfs_dir = local_.path() / "cloned";
  c.c4_repo_url = repo.string();
  mc4_prepare(c, log_);
  EXPECT_TRUE(fs::exists(c.git_lfs_dir / "en" / "c4-train.00001-of-01024.json.gz"));
  EXPECT_EQ(read_worker_mapping(c.download_worker_mapping, 0).size() + read_worker_mapping(c.download_worker_mapping, 1).size(),
            5u);
}

TEST(CustomDatasetFlow, TrainTokenizerThenPreprocessAcrossSlots) {
  TempDir dir;
  const Logger log = Logger::capturing();
  std::string text;
  for (int i = 0; i < 20; ++i) text += jsonl_docs(50, i);
  write_file_atomic(dir.path() / "train.txt", text);
  write_file_atomic(dir.path() / "raw" / "a.jsonl", jsonl_docs(100, 1));
  write_file_atomic(dir.path() / "raw" / "b.json.gz", testing::gzip_compress(jsonl_docs(60, 2)));
  write_file_atomic(dir.path() / "raw" / "c.jsonl.zst", testing::zstd_compress(jsonl_docs(30, 3)));
  CustomDatasetConfig c;
  c.train_tokenizer_args = {{"input", (dir.path() / "train.txt").string()},
                            {"model_prefix", "custom_sp_tokenizer"},
                            {"model_type", "bpe"},
                            {"vocab_size", "60"},
                            {"character_coverage", "0.9995"},
                            {"unk_id", "1"},
                            {"bos_id", "2"},
                            {"eos_id", "3"},
                            {"pad_id", "0"},
                            {"minloglevel", "2"}};
  c.bpe_save_dir = dir.path() / "bpe";
  c.raw_dataset_files = {dir.path() / "raw" / "a.jsonl", dir.path() / "raw" / "b.json.gz", dir.path() / "raw" / "c.jsonl.zst"};
  c.tokenizer.library = "sentencepiece";
  c.tokenizer.model_file = dir.path() / "bpe" / "custom_sp_tokenizer.model";
  c.preprocess_worker_mapping = dir.path() / "preprocess_mapping";
  c.preprocessed_dir = dir.path() / "preprocessed";
  c.node_array_size = 1;
  c.workers_per_node = 2;
  c.progress = ProgressMode::kOff;
  custom_train_tokenizer(c, log);
  ASSERT_TRUE(fs::exists(c.tokenizer.model_file));
  for (int slot = 0; slot < 2; ++slot) custom_preprocess(c, slot, log);
  EXPECT_EQ(IndexedDataset(dir.path() / "preprocessed" / "a_text_document").num_documents(), 100u);
  EXPECT_EQ(IndexedDataset(dir.path() / "preprocessed" / "b_text_document").num_documents(), 60u);
  EXPECT_EQ(IndexedDataset(dir.path() / "preprocessed" / "c_text_document").num_documents(), 30u);
  EXPECT_TRUE(fs::exists(c.preprocess_worker_mapping));
  // One dataset per slot with output_prefix.
  c.output_prefix = "mine";
  c.preprocessed_dir = dir.path() / "merged";
  for (int slot = 0; slot < 2; ++slot) custom_preprocess(c, slot, log);
  const std::uint64_t total = IndexedDataset(dir.path() / "merged" / "mine_00_text_document").num_documents() +
                              IndexedDataset(dir.path() / "merged" / "mine_01_text_document").num_documents();
  EXPECT_EQ(total, 190u);
  c.train_tokenizer_args.erase("input");
  EXPECT_THROW(custom_train_tokenizer(c, log), ConfigError);
}

}  // namespace
}  // namespace bignlp::data
