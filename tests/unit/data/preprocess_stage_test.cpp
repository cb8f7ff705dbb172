// bignlp-preprocess in stage mode, as the launcher's jobs run it: a saved stage config, --step,
// and the Slurm variables that say which share of the work is this task's.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
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
    for (int k = 0; k < 2 + (i + seed) % 7; ++k) text += std::string(kWords[(i * 7 + k + seed) % 10]) + " ";
    out += nlohmann::json({{"text", text}}).dump() + "\n";
  }
  return out;
}

// Runs the worker with `env` (e.g. "SLURM_ARRAY_TASK_ID=3"); returns the exit code, output in *out.
int worker(const fs::path& dir, const std::string& name, const std::string& step, const std::string& env, std::string* out,
           const std::string& extra = "") {
  int rc = -1;
  *out = testing::run_command("env -u SLURM_ARRAY_TASK_ID -u SLURM_LOCALID -u SLURM_PROCID -u SLURM_NTASKS " + env + " " +
                                  BIGNLP_PREPROCESS_BIN + " --config-path " + dir.string() + " --config-name " + name +
                                  " --step " + step + " --progress log " + extra + " 2>&1",
                              &rc);
  return rc;
}

TEST(PreprocessStage, PileStepsAsArrayElementsAndByRank) {
  if (!testing::python_has("http.server")) GTEST_SKIP() << "/usr/bin/python3 is needed for the test HTTP server";
  TempDir remote, local;
  for (int n : {0, 1, 3}) {
    write_file_atomic(remote.path() / "pile" / fmt::format("{:02d}.jsonl.zst", n), testing::zstd_compress(jsonl_docs(50 + n, n)));
  }
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const char* w : kWords) vocab += std::string(w) + "\n";
  write_file_atomic(remote.path() / "vocab.txt", vocab);
  testing::TestHttpServer server(remote.path());
  ASSERT_TRUE(server.ok());
  const fs::path data = local.path() / "data";
  write_file_atomic(local.path() / "cfg" / "download_t5_pile_hydra.yaml",
                    "run:\n  name: download_t5_pile\n  node_array_size: 30\n  array: 0,1,3\n"
                    "dataset: pile\ndownload_the_pile: true\n"
                    "the_pile_url: " + server.url("ok") + "pile/\nfile_numbers: 0,1,3\npreprocess_data: true\n"
                    "download_vocab_url: " + server.url("ok") + "vocab.txt\ndownload_merges_url: null\n"
                    "vocab_save_dir: " + (data / "bpe").string() + "\nmerges_save_dir: " + (data / "bpe").string() + "\n"
                    "tokenizer_type: BertWordPieceCase\nrm_downloaded: true\nrm_extracted: true\n"
                    "data_dir: " + data.string() + "\noutput_prefix: my-t5\n");
  const fs::path cfg = local.path() / "cfg";
  std::string out;
  // Slurm: the array index is the file number.
  for (const char* step : {"download", "extract", "preprocess"}) {
    for (int n : {0, 3}) {
      ASSERT_EQ(worker(cfg, "download_t5_pile_hydra.yaml", step, fmt::format("SLURM_ARRAY_TASK_ID={}", n), &out), 0) << out;
    }
  }
  EXPECT_EQ(IndexedDataset(data / "my-t5_00_text_document").num_documents(), 50u);
  EXPECT_EQ(IndexedDataset(data / "my-t5_03_text_document").num_documents(), 53u);
  EXPECT_FALSE(fs::exists(data / "my-t5_01_text_document.idx"));
  // BCP: no array; rank 1 of 2 takes the second listed file (1).
  for (const char* step : {"download", "extract", "preprocess"}) {
    ASSERT_EQ(worker(cfg, "download_t5_pile_hydra.yaml", step, "SLURM_PROCID=1 SLURM_NTASKS=2", &out), 0) << out;
  }
  EXPECT_EQ(IndexedDataset(data / "my-t5_01_text_document").num_documents(), 51u);
  EXPECT_FALSE(fs::exists(data / "01.jsonl"));
  // An array index that is not a configured file, an unknown step, a bad override.
  EXPECT_EQ(worker(cfg, "download_t5_pile_hydra.yaml", "download", "SLURM_ARRAY_TASK_ID=2", &out),
            static_cast<int>(ExitCode::kConfig)) << out;
  EXPECT_NE(out.find("array task 2 is not one of the configured file numbers (0,1,3)"), std::string::npos) << out;
  EXPECT_EQ(worker(cfg, "download_t5_pile_hydra.yaml", "extrakt", "", &out), static_cast<int>(ExitCode::kUsage)) << out;
  EXPECT_NE(out.find("did you mean 'extract'"), std::string::npos) << out;
  EXPECT_EQ(worker(cfg, "download_t5_pile_hydra.yaml", "download", "", &out, "file_numbers=0-x"),
            static_cast<int>(ExitCode::kConfig)) << out;
  EXPECT_NE(out.find("file_numbers"), std::string::npos) << out;
}

TEST(PreprocessStage, CustomDatasetTrainTokenizerAndPreprocess) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 30; ++i) text += jsonl_docs(40, i);
  write_file_atomic(dir.path() / "train.txt", text);
  write_file_atomic(dir.path() / "raw" / "a.jsonl", jsonl_docs(70, 1));
  write_file_atomic(dir.path() / "raw" / "b.jsonl.gz", testing::gzip_compress(jsonl_docs(30, 2)));
  const fs::path c = dir.path() / "custom";
  write_file_atomic(dir.path() / "cfg" / "custom_dataset_hydra.yaml",
                    "run:\n  name: custom_dataset\n  node_array_size: 1\n  cpus_per_node: 2\n  workers_per_node: 2\n"
                    "dataset: custom_dataset\ncustom_dataset_dir: " + c.string() + "\ntrain_tokenizer: true\n"
                    "train_tokenizer_args:\n  input: " + (dir.path() / "train.txt").string() + "\n  input_format: text\n"
                    "  model_prefix: custom_sp_tokenizer\n  model_type: bpe\n  vocab_size: 60\n  character_coverage: 0.9995\n"
                    "  unk_id: 1\n  bos_id: 2\n  eos_id: 3\n  pad_id: 0\n"
                    "bpe_save_dir: " + (c / "bpe").string() + "\npreprocess_data: true\nraw_dataset_files:\n"
                    "  - " + (dir.path() / "raw" / "a.jsonl").string() + "\n  - " + (dir.path() / "raw" / "b.jsonl.gz").string() + "\n"
                    "tokenizer_model: " + (c / "bpe" / "custom_sp_tokenizer.model").string() + "\n"
                    "preprocess_worker_mapping: " + (c / "preprocess_mapping").string() + "\n"
                    "preprocessed_dir: " + (c / "preprocessed").string() + "\n");
  const fs::path cfg = dir.path() / "cfg";
  std::string out;
  ASSERT_EQ(worker(cfg, "custom_dataset_hydra.yaml", "train_tokenizer", "", &out), 0) << out;
  EXPECT_TRUE(fs::exists(c / "bpe" / "custom_sp_tokenizer.model"));
  for (int local = 0; local < 2; ++local) {
    ASSERT_EQ(worker(cfg, "custom_dataset_hydra.yaml", "preprocess", fmt::format("SLURM_ARRAY_TASK_ID=0 SLURM_LOCALID={}", local), &out), 0)
        << out;
  }
  EXPECT_EQ(IndexedDataset(c / "preprocessed" / "a_text_document").num_documents(), 70u);
  EXPECT_EQ(IndexedDataset(c / "preprocessed" / "b_text_document").num_documents(), 30u);
  EXPECT_EQ(IndexedDataset(c / "preprocessed" / "a_text_document").dtype(), TokenDType::kUint16);
  // A typo in a key is reported (the step still runs).
  ASSERT_EQ(worker(cfg, "custom_dataset_hydra.yaml", "preprocess", "", &out, "+apend_eod=true"), 0) << out;
  EXPECT_NE(out.find("keys not used by this step: apend_eod"), std::string::npos) << out;
}

// The embedded demo config works as shipped (with the fetched corpus).
TEST(PreprocessStage, DemoConfig) {
  const fs::path moby = testing::source_path("data/demo/raw/moby_dick.txt");
  if (!fs::exists(moby)) GTEST_SKIP() << "demo corpus not found: run scripts/fetch_demo_data.sh";
  TempDir dir;
  const std::string yaml = read_file(testing::source_path("conf/data_preparation/gpt3/demo.yaml"));
  // Resolve the three interpolations the file uses by hand: data_dir, base_results_dir, .custom_dataset_dir.
  std::string resolved = replace_all(yaml, "${data_dir}/demo/raw", testing::source_path("data/demo/raw").string());
  resolved = replace_all(resolved, "${data_dir}/bpe", testing::source_path("data/bpe").string());
  resolved = replace_all(resolved, "${data_dir}", dir.path().string());
  resolved = replace_all(resolved, "${base_results_dir}/${.name}", (dir.path() / "results").string());
  resolved = replace_all(resolved, "${.custom_dataset_dir}", (dir.path() / "demo").string());
  write_file_atomic(dir.path() / "cfg" / "demo_hydra.yaml", resolved);
  std::string out;
  ASSERT_EQ(worker(dir.path() / "cfg", "demo_hydra.yaml", "preprocess", "SLURM_ARRAY_TASK_ID=0", &out), 0) << out;
  IndexedDataset ds(dir.path() / "demo" / "my-gpt3_demo_text_document");
  EXPECT_GT(ds.num_documents(), 2000u);
  EXPECT_GT(ds.total_tokens(), 300000);
  EXPECT_EQ(ds.get(0).back(), 50256);  // --append-eod
}

}  // namespace
}  // namespace bignlp::data
