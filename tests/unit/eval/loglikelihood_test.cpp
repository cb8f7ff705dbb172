// Log-likelihood scoring: a tiny random Hugging Face GPT-2 (written by tests/python/hf_gpt2_reference.py)
// imported with bignlp-convert and scored with bignlp-evaluate gives PyTorch's log-probabilities;
// batching does not change results; bad request files fail with file:line.
#include "bignlp/model/gpt.h"
#include "bignlp/eval/loglikelihood.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::eval {
namespace {

namespace fs = std::filesystem;

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

class HfGpt2ScoringTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HfGpt2ScoringTest, ImportedWeightsScoreLikePyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  TempDir dir("hf-gpt2");
  const fs::path hf = dir.path() / "hf", ckpt = dir.path() / "ckpt", out = dir.path() / "out.jsonl";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {}/tests/python/hf_gpt2_reference.py {} {}", BIGNLP_SOURCE_DIR,
                            hf.string(), GetParam())),
            0);
  ASSERT_EQ(run(fmt::format("{}/bignlp-convert --from hf-gpt2 --input {} --output {}", BIGNLP_BIN_DIR, hf.string(),
                            ckpt.string())),
            0);
  ASSERT_EQ(run(fmt::format("{}/bignlp-evaluate --checkpoint {} --loglikelihood {} --output {} --batch-size 3",
                            BIGNLP_BIN_DIR, ckpt.string(), (hf / "requests.jsonl").string(), out.string())),
            0);
  const auto expected = read_jsonl(hf / "expected.jsonl");
  const auto actual = read_jsonl(out);
  ASSERT_EQ(actual.size(), expected.size());
  int greedy = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = expected[i]["logprob"].get<double>();
    EXPECT_NEAR(actual[i]["logprob"].get<double>(), e, 1e-5 * std::max(1.0, std::abs(e))) << "request " << i;
    EXPECT_EQ(actual[i]["is_greedy"].get<bool>(), expected[i]["is_greedy"].get<bool>()) << "request " << i;
    greedy += expected[i]["is_greedy"].get<bool>();
  }
  EXPECT_GE(greedy, 1);
}

INSTANTIATE_TEST_SUITE_P(Layouts, HfGpt2ScoringTest, ::testing::Values("", "--no-prefix --fp16"));

// Encoder-decoder: a random HF mT5-shaped (gated-gelu, untied head) and T5-shaped (relu, tied
// head) checkpoint imported with bignlp-convert --from hf-t5 and scored with bignlp-evaluate
// (context to the encoder, continuation from the decoder start token) gives what
// tests/python/hf_t5_reference.py's forward of the HF architecture gives.
class HfT5ScoringTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HfT5ScoringTest, ImportedT5ScoresLikeTheHfArchitecture) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  // The checkpoint is named as training names them ('=' inside): a flag value, not an override.
  TempDir dir("hf-t5-eval");
  const fs::path hf = dir.path() / "hf", ckpt = dir.path() / "megatron_t5--val_loss=1.23-step=5-last", out = dir.path() / "out.jsonl";
  const std::string script = std::string(BIGNLP_SOURCE_DIR) + "/tests/python/hf_t5_reference.py";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} write {} {}", script, hf.string(), GetParam())), 0);
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} requests {}", script, hf.string())), 0);
  ASSERT_EQ(run(fmt::format("{}/bignlp-convert --from hf-t5 --input {} --output {}", BIGNLP_BIN_DIR, hf.string(),
                            ckpt.string())),
            0);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(ckpt).family, "t5");
  ASSERT_EQ(run(fmt::format("{}/bignlp-evaluate --checkpoint {} --loglikelihood {} --output {} --batch-size 3",
                            BIGNLP_BIN_DIR, ckpt.string(), (hf / "requests.jsonl").string(), out.string())),
            0);
  const auto expected = read_jsonl(hf / "expected.jsonl");
  const auto actual = read_jsonl(out);
  ASSERT_EQ(actual.size(), expected.size());
  int greedy = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = expected[i]["logprob"].get<double>();
    EXPECT_NEAR(actual[i]["logprob"].get<double>(), e, 1e-5 * std::max(1.0, std::abs(e))) << "request " << i;
    EXPECT_EQ(actual[i]["is_greedy"].get<bool>(), expected[i]["is_greedy"].get<bool>()) << "request " << i;
    greedy += expected[i]["is_greedy"].get<bool>();
  }
  EXPECT_GE(greedy, 1);
  EXPECT_LT(greedy, static_cast<int>(expected.size()));
}

INSTANTIATE_TEST_SUITE_P(Variants, HfT5ScoringTest, ::testing::Values("mt5", "t5"));

// bignlp-evaluate runs the launcher's evaluation stage (tests/unit/eval/tasks_test.cpp) and
// bignlp-convert its conversion stage (tests/unit/export/stage_test.cpp); a stage config that
// cannot be read is an error naming it, not a flag-parsing failure.
TEST(LoglikelihoodTest, StageConfigsAreRefusedNamingTheStage) {
  for (const auto& [program, expected] : std::vector<std::pair<std::string, std::string>>{{"bignlp-evaluate", "/nonexistent"}}) {
    const std::string cmd = fmt::format("{}/{} --config-path /nonexistent --config-name x_hydra.yaml 2>&1", BIGNLP_BIN_DIR, program);
    std::FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int st = pclose(p);
    EXPECT_NE(WEXITSTATUS(st), 0) << out;
    EXPECT_NE(out.find(expected), std::string::npos) << out;
  }
}

TEST(LoglikelihoodTest, BatchSizeDoesNotChangeResultsAndBadRequestsNameTheLine) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  model::GptConfig c;
  c.vocab_size = 40;
  c.make_vocab_size_divisible_by = 8;
  c.seq_length = 12;
  c.num_layers = 1;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  model::GptModel m(c, ctx);
  m.initialize(5);
  std::vector<LoglikelihoodRequest> reqs{{{1, 2, 3}, {4}}, {{5}, {6, 7, 8, 9}}, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {12, 13}},
                                         {{7, 7}, {7}}};
  const auto one = score_loglikelihood(m, reqs, 1);
  const auto all = score_loglikelihood(m, reqs, 4);
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_NEAR(one[i].logprob, all[i].logprob, 1e-5);
    EXPECT_EQ(one[i].is_greedy, all[i].is_greedy);
    EXPECT_LT(one[i].logprob, 0.0);
  }
  // Request 2 (14 tokens, 13 inputs) exceeds 12 positions: its oldest context token is dropped,
  // which equals scoring the truncated request.
  const auto trunc = score_loglikelihood(m, {{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {12, 13}}}, 1);
  EXPECT_NEAR(trunc[0].logprob, one[2].logprob, 1e-6);

  TempDir dir("ll");
  const fs::path f = dir.path() / "r.jsonl";
  write_file_atomic(f, "{\"context\": [1], \"continuation\": [2]}\n\n{\"context\": [], \"continuation\": [2]}\n");
  try {
    read_loglikelihood_requests(f, 40);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("r.jsonl:3: empty context"), std::string::npos) << e.what();
  }
  write_file_atomic(f, "{\"context\": [1], \"continuation\": [99]}\n");
  EXPECT_THROW(read_loglikelihood_requests(f, 40), DataError);
}

}  // namespace
}  // namespace bignlp::eval
