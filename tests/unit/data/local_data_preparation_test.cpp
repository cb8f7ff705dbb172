// The data preparation stage end to end through the launcher: `bignlp stages=[data_preparation]
// ... cluster_type=local` renders the step jobs and runs them with the local executor, which starts
// bignlp-preprocess with the Slurm variables of each array element.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bignlp/core/file_io.h"
#include "bignlp/data/indexed_dataset.h"
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
    for (int k = 0; k < 2 + (i + seed) % 6; ++k) text += std::string(kWords[(i * 3 + k + seed) % 10]) + " ";
    out += nlohmann::json({{"text", text}}).dump() + "\n";
  }
  return out;
}

// Runs the launcher from the source tree with `overrides`; returns the exit code.
int launch(const std::string& overrides, std::string* out) {
  int rc = -1;
  *out = testing::run_command(std::string(BIGNLP_BIN_DIR) + "/bignlp stages=[data_preparation] cluster_type=local bin_dir=" +
                                  BIGNLP_BIN_DIR + " " + overrides + " 2>&1",
                              &rc);
  return rc;
}

TEST(LocalDataPreparation, PileForT5) {
  if (!testing::python_has("http.server")) GTEST_SKIP() << "/usr/bin/python3 is needed for the test HTTP server";
  TempDir remote, local;
  for (int n : {0, 2}) {
    write_file_atomic(remote.path() / "pile" / fmt::format("{:02d}.jsonl.zst", n), testing::zstd_compress(jsonl_docs(40 + n, n)));
  }
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const char* w : kWords) vocab += std::string(w) + "\n";
  write_file_atomic(remote.path() / "bert-large-cased-vocab.txt", vocab);
  testing::TestHttpServer server(remote.path());
  ASSERT_TRUE(server.ok());
  const fs::path data = local.path() / "data";
  std::string out;
  const int rc = launch(fmt::format("data_preparation=t5/download_t5_pile base_results_dir={} data_dir={} "
                                    "data_preparation.the_pile_url={}pile/ 'data_preparation.file_numbers=\"0,2\"' "
                                    "data_preparation.download_vocab_url={}bert-large-cased-vocab.txt",
                                    (local.path() / "results").string(), data.string(), server.url("drop"),
                                    server.url("ok")),
                        &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(IndexedDataset(data / "my-t5_00_text_document").num_documents(), 40u);
  EXPECT_EQ(IndexedDataset(data / "my-t5_02_text_document").num_documents(), 42u);
  EXPECT_EQ(IndexedDataset(data / "my-t5_02_text_document").get(0).back(), 3);  // [SEP] appended
  for (const char* gone : {"00.jsonl.zst", "00.jsonl", "02.jsonl.zst", "02.jsonl"}) EXPECT_FALSE(fs::exists(data / gone));
  EXPECT_TRUE(fs::exists(local.path() / "results" / "download_t5_pile" / "download_t5_pile_hydra.yaml"));
}

TEST(LocalDataPreparation, CustomDatasetWithTokenizerTraining) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 30; ++i) text += jsonl_docs(40, i);
  write_file_atomic(dir.path() / "train.txt", text);
  write_file_atomic(dir.path() / "raw" / "a.jsonl", jsonl_docs(50, 1));
  write_file_atomic(dir.path() / "raw" / "b.jsonl.gz", testing::gzip_compress(jsonl_docs(20, 2)));
  std::string out;
  const int rc = launch(fmt::format("data_preparation=generic/custom_dataset base_results_dir={} data_dir={} "
                                    "data_preparation.run.node_array_size=1 data_preparation.run.workers_per_node=2 "
                                    "data_preparation.run.cpus_per_node=2 data_preparation.train_tokenizer_args.input={} "
                                    "data_preparation.train_tokenizer_args.vocab_size=60 "
                                    "data_preparation.raw_dataset_files=[{},{}]",
                                    (dir.path() / "results").string(), (dir.path() / "data").string(),
                                    (dir.path() / "train.txt").string(), (dir.path() / "raw" / "a.jsonl").string(),
                                    (dir.path() / "raw" / "b.jsonl.gz").string()),
                        &out);
  ASSERT_EQ(rc, 0) << out;
  const fs::path pre = dir.path() / "data" / "custom_dataset" / "preprocessed";
  EXPECT_EQ(IndexedDataset(pre / "a_text_document").num_documents(), 50u);
  EXPECT_EQ(IndexedDataset(pre / "b_text_document").num_documents(), 20u);
  EXPECT_TRUE(fs::exists(dir.path() / "data" / "custom_dataset" / "bpe" / "custom_sp_tokenizer.model"));
}

}  // namespace
}  // namespace bignlp::data
