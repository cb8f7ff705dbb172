// The zero-shot task suite: bignlp-evaluate on the fixture task files (tests/data/eval, each task's
// published format) against tests/python/eval_reference.py (PyTorch float64, same weights, its own
// tokenizer, task parsing and metrics) for every task and metric in both task styles; the request
// cache resumes an interrupted run; bad inputs fail naming the file; the bootstrap draws what
// Python's random draws.
#include "bignlp/eval/tasks.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "eval_fixture.h"

namespace bignlp::eval {
namespace {

namespace fs = std::filesystem;

const fs::path kData = fs::path(BIGNLP_SOURCE_DIR) / "tests" / "data" / "eval";

bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch, regex' >/dev/null 2>&1") == 0;
}

struct Proc {
  int status = -1;
  std::string output;
};

Proc run(const std::string& cmd) {
  Proc r;
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

/// Same tasks and metrics, values within 1e-6 relative.
void expect_close(const nlohmann::json& a, const nlohmann::json& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [task, metrics] : a.items()) {
    ASSERT_TRUE(b.contains(task)) << task;
    ASSERT_EQ(metrics.size(), b[task].size()) << task;
    for (const auto& [m, v] : metrics.items()) {
      const double x = v.get<double>(), y = b[task][m].get<double>();
      EXPECT_NEAR(x, y, 1e-6 * std::max(1.0, std::abs(y))) << task << "." << m;
    }
  }
}

class EvalSuiteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("eval-suite");
    test_support::write_small_bpe(dir_->path() / "bpe");
    test_support::write_eval_checkpoint(dir_->path() / "ckpt", dir_->path() / "bpe");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path ckpt() { return dir_->path() / "ckpt"; }
  static std::string evaluate(const std::string& args) {
    return fmt::format("{}/bignlp-evaluate --checkpoint {} --data-dir {} --threads 1 {}", BIGNLP_BIN_DIR,
                       ckpt().string(), kData.string(), args);
  }
  static TempDir* dir_;
};
TempDir* EvalSuiteTest::dir_ = nullptr;

const std::string kAll = "lambada,boolq,race,piqa,hellaswag,winogrande,wikitext2,wikitext103";

class EvalSuiteStyleTest : public EvalSuiteTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(EvalSuiteStyleTest, EveryMetricMatchesThePyTorchReference) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch and regex is not installed";
  const std::string style = GetParam();
  const fs::path out = dir_->path() / fmt::format("results-{}.json", style);
  const fs::path ref = dir_->path() / fmt::format("reference-{}.json", style);
  const Proc ev = run(evaluate(fmt::format("--tasks all_tasks --task-style {} --batch-size 3 --no-cache --output {}",
                                          style, out.string())));
  ASSERT_EQ(ev.status, 0) << ev.output;
  // The table on stdout names every task.
  for (const auto& t : split(kAll, ',')) EXPECT_NE(ev.output.find("|" + t), std::string::npos) << ev.output;
  const Proc py = run(fmt::format("/usr/bin/python3 {}/tests/python/eval_reference.py {} {} {} {} {} {} {}",
                                 BIGNLP_SOURCE_DIR, ckpt().string(), kData.string(),
                                 (dir_->path() / "bpe" / "vocab.json").string(),
                                 (dir_->path() / "bpe" / "merges.txt").string(), style, kAll, ref.string()));
  ASSERT_EQ(py.status, 0) << py.output;
  const auto got = nlohmann::json::parse(read_file(out));
  const auto want = nlohmann::json::parse(read_file(ref));
  ASSERT_TRUE(got.contains("versions") && got.contains("config"));
  EXPECT_EQ(got["config"]["task_style"], style);
  int compared = 0;
  for (const auto& [task, metrics] : want["results"].items()) {
    ASSERT_TRUE(got["results"].contains(task)) << task;
    EXPECT_EQ(got["results"][task].size(), metrics.size()) << task << ": " << got["results"][task].dump();
    for (const auto& [metric, value] : metrics.items()) {
      ASSERT_TRUE(got["results"][task].contains(metric)) << task << "." << metric;
      ASSERT_TRUE(got["results"][task][metric].is_number()) << task << "." << metric;
      const double w = value.get<double>(), g = got["results"][task][metric].get<double>();
      EXPECT_NEAR(g, w, 1e-5 * std::max(1.0, std::abs(w))) << task << "." << metric;
      ++compared;
    }
  }
  // lambada 4, boolq 2, race 4 or 2, piqa 4, hellaswag 4, winogrande 2, wikitext 3 + 3.
  EXPECT_EQ(compared, style == std::string("launcher") ? 26 : 24);
  // The fixtures are not degenerate: some answers right, some wrong.
  double acc_sum = 0;
  for (const char* t : {"boolq", "race", "piqa", "hellaswag", "winogrande"}) acc_sum += got["results"][t]["acc"].get<double>();
  EXPECT_GT(acc_sum, 0.0);
  EXPECT_LT(acc_sum, 5.0);
}

INSTANTIATE_TEST_SUITE_P(Styles, EvalSuiteStyleTest, ::testing::Values("launcher", "lm-eval"));

TEST_F(EvalSuiteTest, TheStylesDifferWhereTheHarnessesDo) {
  const fs::path a = dir_->path() / "style-a.json", b = dir_->path() / "style-b.json";
  ASSERT_EQ(run(evaluate(fmt::format("--tasks boolq,race,wikitext2 --no-cache --output {}", a.string()))).status, 0);
  ASSERT_EQ(run(evaluate(fmt::format("--tasks boolq,race,wikitext2 --no-cache --task-style lm-eval --output {}",
                                     b.string())))
                .status,
            0);
  const auto ja = nlohmann::json::parse(read_file(a))["results"], jb = nlohmann::json::parse(read_file(b))["results"];
  EXPECT_TRUE(ja["race"].contains("acc_norm"));
  EXPECT_FALSE(jb["race"].contains("acc_norm"));
  // bits_per_byte: nats in the launcher's fork, bits upstream; the perplexities agree.
  EXPECT_NEAR(jb["wikitext2"]["bits_per_byte"].get<double>() * std::log(2.0),
              ja["wikitext2"]["bits_per_byte"].get<double>(), 1e-9);
  EXPECT_DOUBLE_EQ(ja["wikitext2"]["word_perplexity"].get<double>(), jb["wikitext2"]["word_perplexity"].get<double>());
}

TEST_F(EvalSuiteTest, AnInterruptedRunResumesFromTheCache) {
  const fs::path cache = dir_->path() / "cache", fresh = dir_->path() / "fresh.json", resumed = dir_->path() / "resumed.json";
  const std::string tasks = "--tasks lambada,piqa,wikitext2 --batch-size 2";
  ASSERT_EQ(run(evaluate(fmt::format("{} --no-cache --output {}", tasks, fresh.string()))).status, 0);
  ASSERT_EQ(run(evaluate(fmt::format("{} --cache-dir {} --output {}", tasks, cache.string(), resumed.string()))).status, 0);
  // Cut every cache file to half its lines plus a torn line, as a killed run leaves it.
  int files = 0;
  for (const auto& e : fs::directory_iterator(cache)) {
    auto lines = split(read_file(e.path()), '\n');
    ASSERT_GE(lines.size(), 3u) << e.path();
    std::string text;
    for (std::size_t i = 0; i < lines.size() / 2; ++i) text += lines[i] + "\n";
    text += lines[lines.size() / 2].substr(0, 9);
    write_file_atomic(e.path(), text);
    ++files;
  }
  EXPECT_EQ(files, 3);
  const Proc again = run(evaluate(fmt::format("{} --cache-dir {} --output {}", tasks, cache.string(), resumed.string())));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("requests from the cache"), std::string::npos) << again.output;
  // fp32 sums depend on a batch's padded length, so batches made of other requests agree to rounding.
  expect_close(nlohmann::json::parse(read_file(resumed))["results"], nlohmann::json::parse(read_file(fresh))["results"]);
  // A finished run answers everything from the cache.
  const Proc done = run(evaluate(fmt::format("{} --cache-dir {} --output {}", tasks, cache.string(), resumed.string())));
  ASSERT_EQ(done.status, 0);
  EXPECT_NE(done.output.find("lambada: 5 documents, 5 requests (5 cached)"), std::string::npos) << done.output;
  EXPECT_NE(done.output.find("piqa: 4 documents, 8 requests (8 cached)"), std::string::npos) << done.output;
}

TEST_F(EvalSuiteTest, BatchSizeAndLimitAreHonoured) {
  const fs::path a = dir_->path() / "b1.json", b = dir_->path() / "b7.json", c = dir_->path() / "lim.json";
  ASSERT_EQ(run(evaluate(fmt::format("--tasks hellaswag,lambada --batch-size 1 --no-cache --output {}", a.string()))).status, 0);
  ASSERT_EQ(run(evaluate(fmt::format("--tasks hellaswag,lambada --batch-size 7 --no-cache --output {}", b.string()))).status, 0);
  expect_close(nlohmann::json::parse(read_file(a))["results"], nlohmann::json::parse(read_file(b))["results"]);
  const Proc lim = run(evaluate(fmt::format("--tasks piqa --limit 2 --no-cache --output {}", c.string())));
  ASSERT_EQ(lim.status, 0) << lim.output;
  EXPECT_NE(lim.output.find("piqa: 2 documents, 4 requests"), std::string::npos) << lim.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(c))["config"]["limit"], 2);
}

TEST_F(EvalSuiteTest, BadInputsFailNamingTheFile) {
  TempDir bad("eval-bad");
  auto with_dir = [&](const std::string& args) {
    return fmt::format("{}/bignlp-evaluate --checkpoint {} --data-dir {} {}", BIGNLP_BIN_DIR, ckpt().string(),
                       bad.path().string(), args);
  };
  // A missing task file names the path and the download helper.
  Proc r = run(with_dir("--tasks winogrande --no-cache --output /dev/null"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find((bad.path() / "winogrande_1.1/dev.jsonl").string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--download"), std::string::npos) << r.output;
  // A malformed line names file:line; a record without its field names the key.
  write_file_atomic(bad.path() / "lambada_test.jsonl", "{\"text\": \"a b\"}\n{\"text\": \"a b\"\n");
  write_file_atomic(bad.path() / "hellaswag_val.jsonl", "{\"ctx_a\": \"x\"}\n");
  r = run(with_dir("--tasks lambada --output /dev/null"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find((bad.path() / "lambada_test.jsonl").string() + ":2:"), std::string::npos) << r.output;
  r = run(with_dir("--tasks hellaswag --output /dev/null"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("hellaswag_val.jsonl:1: the record has no \"ctx_b\""), std::string::npos) << r.output;
  r = run(with_dir("--tasks lambda --output /dev/null"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("unknown task 'lambda' (did you mean 'lambada'?)"), std::string::npos) << r.output;
  r = run(with_dir("--tasks lambada --task-style nemo --output /dev/null"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--task-style: unknown task style 'nemo'"), std::string::npos) << r.output;
}

// The download helper over file:// URLs: a pinned sha256 (computed here by Python's hashlib) is
// checked, a zip is unpacked into the published layout, a wrong checksum fails naming the file.
TEST(EvalTasksTest, DownloadHelperFetchesChecksAndUnpacks) {
  if (std::system("command -v unzip >/dev/null 2>&1") != 0) GTEST_SKIP() << "unzip is not installed";
  TempDir dir("eval-download");
  const fs::path zip = dir.path() / "wg.zip", out = dir.path() / "data";
  const Proc mk = run(fmt::format(
      "/usr/bin/python3 -c 'import zipfile, hashlib, sys; z = zipfile.ZipFile(sys.argv[1], \"w\"); "
      "z.write(sys.argv[2], \"winogrande_1.1/dev.jsonl\"); z.close(); "
      "print(hashlib.sha256(open(sys.argv[3], \"rb\").read()).hexdigest())' {} {} {}",
      zip.string(), (kData / "winogrande_1.1" / "dev.jsonl").string(), (kData / "lambada_test.jsonl").string()));
  ASSERT_EQ(mk.status, 0) << mk.output;
  const std::string sha = std::string(trim(mk.output));
  auto manifest = [&](const std::string& lambada_sha) {
    const fs::path m = dir.path() / "files.yaml";
    write_file_atomic(m, fmt::format("lambada:\n  - url: file://{}\n    file: lambada_test.jsonl\n    sha256: \"{}\"\n"
                                     "    extract: none\nwinogrande:\n  - url: file://{}\n    file: wg.zip\n"
                                     "    sha256: \"\"\n    extract: zip\n",
                                     (kData / "lambada_test.jsonl").string(), lambada_sha, zip.string()));
    return m;
  };
  const Proc ok = run(fmt::format("{}/bignlp-evaluate --download --tasks lambada,winogrande --data-dir {} --manifest {}",
                                  BIGNLP_BIN_DIR, out.string(), manifest(sha).string()));
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(read_file(out / "lambada_test.jsonl"), read_file(kData / "lambada_test.jsonl"));
  EXPECT_EQ(read_file(out / "winogrande_1.1" / "dev.jsonl"), read_file(kData / "winogrande_1.1" / "dev.jsonl"));
  EXPECT_NE(ok.output.find("matches"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("not pinned"), std::string::npos) << ok.output;
  fs::remove(out / "lambada_test.jsonl");
  const Proc bad = run(fmt::format("{}/bignlp-evaluate --download --tasks lambada --data-dir {} --manifest {}",
                                   BIGNLP_BIN_DIR, out.string(), manifest(std::string(64, '0')).string()));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find((out / "lambada_test.jsonl").string() + ": sha256 " + sha + " differs"), std::string::npos)
      << bad.output;
  EXPECT_FALSE(fs::exists(out / "lambada_test.jsonl"));
}

// The launcher's evaluation stage: bignlp-evaluate on a saved stage config reads its keys (tasks,
// data dir, style, checkpoint folder and name pattern, batch size, tokenizer files) and writes
// results.json into run.results_dir; a layout key that disagrees with the checkpoint is refused
// naming the key.
TEST_F(EvalSuiteTest, TheEvaluationStageConfigIsHonoured) {
  const fs::path stage = dir_->path() / "stage", ckpts = stage / "checkpoints";
  fs::create_directories(ckpts);
  fs::copy(ckpt(), ckpts / "megatron_gpt--val_loss=1.00-step=5-consumed_samples=40.0-last", fs::copy_options::recursive);
  auto config = [&](int tp, const std::string& name) {
    write_file_atomic(stage / "eval_hydra.yaml",
                      fmt::format(R"(run:
  name: eval_x
  time_limit: '4:00:00'
  dependency: singleton
  nodes: 1
  ntasks_per_node: 1
  eval_name: eval_x
  model_train_name: x
  train_dir: {stage}
  tasks: piqa,winogrande
  results_dir: {stage}/out
  tasks_data_dir: {data}
  task_style: lm-eval
model:
  model_type: nemo-gpt3
  checkpoint_folder: {ckpts}
  checkpoint_name: {name}
  hparams_file: {stage}/hparams.yaml
  tensor_model_parallel_size: {tp}
  pipeline_model_parallel_size: 1
  model_parallel_size: {tp}
  precision: 32
  eval_batch_size: 2
  vocab_file: {bpe}/vocab.json
  merge_file: {bpe}/merges.txt
)",
                                  fmt::arg("stage", stage.string()), fmt::arg("data", kData.string()),
                                  fmt::arg("ckpts", ckpts.string()), fmt::arg("name", name), fmt::arg("tp", tp),
                                  fmt::arg("bpe", (dir_->path() / "bpe").string())));
    return fmt::format("{}/bignlp-evaluate --config-path {} --config-name eval_hydra.yaml --threads 1", BIGNLP_BIN_DIR,
                       stage.string());
  };
  const Proc ok = run(config(1, "'megatron_gpt-*last'"));
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("|winogrande"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("with the lm-eval task style"), std::string::npos) << ok.output;
  const auto got = nlohmann::json::parse(read_file(stage / "out" / "results.json"));
  EXPECT_EQ(got["config"]["batch_size"], 2);
  EXPECT_EQ(got["results"].size(), 2u);
  const fs::path cli = dir_->path() / "stage-cli.json";
  ASSERT_EQ(run(evaluate(fmt::format("--tasks piqa,winogrande --task-style lm-eval --batch-size 2 --no-cache --output {}",
                                     cli.string())))
                .status,
            0);
  expect_close(got["results"], nlohmann::json::parse(read_file(cli))["results"]);
  EXPECT_TRUE(fs::exists(stage / "out" / "cache"));
  const Proc tp2 = run(config(2, "latest"));
  EXPECT_NE(tp2.status, 0);
  EXPECT_NE(tp2.output.find("model.tensor_model_parallel_size=2 but checkpoint"), std::string::npos) << tp2.output;
  const Proc none = run(config(1, "nothing-*"));
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.output.find("model.checkpoint_name: no checkpoint in"), std::string::npos) << none.output;
}

TEST(EvalTasksTest, BootstrapDrawsWhatPythonsRandomDraws) {
  if (std::system("/usr/bin/python3 -c 'import random' >/dev/null 2>&1") != 0) GTEST_SKIP();
  for (std::uint32_t seed : {0u, 1u, 99u}) {
    const Proc py = run(fmt::format("/usr/bin/python3 -c 'import random; r = random.Random(); r.seed({}); "
                                   "print(\" \".join(str(x) for x in r.choices(range(7), k=25)))'",
                                   seed));
    ASSERT_EQ(py.status, 0) << py.output;
    std::string mine;
    for (auto i : python_random_choices(seed, 7, 25)) mine += (mine.empty() ? "" : " ") + std::to_string(i);
    EXPECT_EQ(mine + "\n", py.output) << "seed " << seed;
  }
}

TEST(EvalTasksTest, TaskListsAndTextFunctions) {
  EXPECT_EQ(parse_task_list("all_tasks").size(), 8u);
  EXPECT_EQ(parse_task_list("[piqa, lambada]"), (std::vector<std::string>{"piqa", "lambada"}));
  EXPECT_THROW(parse_task_list("squad"), ConfigError);
  EXPECT_EQ(count_words(" a  b\nc "), 5);  // re.split(r"\s+", " a  b\nc ") -> ['', 'a', 'b', 'c', '']
  EXPECT_EQ(hellaswag_preprocess(" Intro [title] Step one [header]  done "), "Intro. Step one  done");
  EXPECT_EQ(wikitext_detokenize("a @-@ b , c ( d ) = = T = ="), "a-b, c (d) == T ==");
  const auto arts = wikitext_articles(" \n = A = \n x \n = = s = = \n y \n = B = \n z \n");
  ASSERT_EQ(arts.size(), 2u);
  EXPECT_EQ(arts[0], " = A = \n x \n = = s = = \n y ");
  EXPECT_EQ(arts[1], " = B = \n z \n");
}

}  // namespace
}  // namespace bignlp::eval
