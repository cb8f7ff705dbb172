// bignlp-generate end to end: a tiny random Hugging Face GPT-2 (tests/python/hf_gpt2_reference.py)
// imported with bignlp-convert generates what a PyTorch greedy loop (and beam search) of the same
// weights generates (tests/python/hf_gpt2_generate_reference.py); bad prompt files fail naming
// the file and line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bignlp/core/file_io.h"

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

/// Exit status and combined output of a shell command.
std::pair<int, std::string> run(const std::string& cmd) {
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
    hf = dir.path() / "hf";
    ckpt = dir.path() / "ckpt";
    prompts = dir.path() / "prompts.jsonl";
    ASSERT_EQ(run(fmt::format("/usr/bin/python3 {}/tests/python/hf_gpt2_reference.py {}", BIGNLP_SOURCE_DIR,
                              hf.string())).first, 0);
    ASSERT_EQ(run(fmt::format("{}/bignlp-convert --from hf-gpt2 --input {} --output {}", BIGNLP_BIN_DIR, hf.string(),
                              ckpt.string())).first, 0);
    // Prompts of different lengths, more of them than --batch-size: requests join as others leave.
    bignlp::write_file_atomic(prompts, "{\"ids\": [3, 14, 15]}\n{\"ids\": [1]}\n{\"ids\": [90, 2, 7, 7, 7, 45, 12, 60, 5, 5]}\n"
                                       "\n{\"ids\": [33, 34]}\n{\"ids\": [8, 6, 4, 2, 0, 96, 95]}\n");
  }
  bignlp::TempDir dir{"generate"};
  fs::path hf, ckpt, prompts;
};

TEST_F(GenerateTest, GreedyOutputEqualsAPyTorchGreedyLoop) {
  const fs::path out = dir.path() / "out.jsonl", expected = dir.path() / "expected.jsonl";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {}/tests/python/hf_gpt2_generate_reference.py {} {} {} 8",
                            BIGNLP_SOURCE_DIR, hf.string(), prompts.string(), expected.string())).first, 0);
  const auto [rc, log] = run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {} --tokens-to-generate 8 "
                                         "--batch-size 2 --end-id -1",
                                         BIGNLP_BIN_DIR, ckpt.string(), prompts.string(), out.string()));
  ASSERT_EQ(rc, 0) << log;
  const auto want = read_jsonl(expected), got = read_jsonl(out);
  ASSERT_EQ(got.size(), 5u);
  ASSERT_EQ(want.size(), 5u);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]["ids"], want[i]["ids"]) << "prompt " << i;
    EXPECT_NEAR(got[i]["cum_logprob"].get<double>(), want[i]["cum_logprob"].get<double>(), 1e-4) << "prompt " << i;
    EXPECT_EQ(got[i]["finish_reason"], "length");
  }
}

TEST_F(GenerateTest, BeamSearchEqualsAPyTorchBeamSearch) {
  const fs::path out = dir.path() / "beam.jsonl", expected = dir.path() / "beam_expected.jsonl";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {}/tests/python/hf_gpt2_generate_reference.py {} {} {} 5 3",
                            BIGNLP_SOURCE_DIR, hf.string(), prompts.string(), expected.string())).first, 0);
  const auto [rc, log] = run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {} --tokens-to-generate 5 "
                                         "--beam-width 3 --batch-size 4 --end-id -1",
                                         BIGNLP_BIN_DIR, ckpt.string(), prompts.string(), out.string()));
  ASSERT_EQ(rc, 0) << log;
  const auto want = read_jsonl(expected), got = read_jsonl(out);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i]["beams"].size(), 3u);
    for (std::size_t b = 0; b < 3; ++b) {
      EXPECT_EQ(got[i]["beams"][b]["ids"], want[i]["beams"][b]["ids"]) << "prompt " << i << " beam " << b;
      EXPECT_NEAR(got[i]["beams"][b]["cum_logprob"].get<double>(), want[i]["beams"][b]["cum_logprob"].get<double>(), 1e-4);
    }
  }
}

TEST_F(GenerateTest, BadPromptFilesNameTheFileAndLine) {
  const fs::path bad = dir.path() / "bad.jsonl", out = dir.path() / "never.jsonl";
  const auto check = [&](const std::string& content, const std::string& needle) {
    bignlp::write_file_atomic(bad, content);
    const auto [rc, log] = run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {}", BIGNLP_BIN_DIR,
                                           ckpt.string(), bad.string(), out.string()));
    EXPECT_NE(rc, 0) << content;
    EXPECT_NE(log.find(needle), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(out));
  };
  check("{\"ids\": [1]}\n{\"ids\": [1, 500]}\n", bad.string() + ":2: ids: 500 is not a token id in [0, 97)");
  check("{\"ids\": [1]}\n\nnot json\n", bad.string() + ":3: not a JSON object");
  check("{\"text\": \"hello\"}\n", bad.string() + ":1: text: the checkpoint records no tokenizer");
  check("{\"ids\": [1], \"temperature\": 2}\n", bad.string() + ":1: unknown key \"temperature\"");
  bignlp::write_file_atomic(bad, "{\"ids\": [1, 2, 3]}\n");
  const auto [rc, log] = run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {} --tokens-to-generate 30",
                                         BIGNLP_BIN_DIR, ckpt.string(), bad.string(), out.string()));
  EXPECT_NE(rc, 0);
  EXPECT_NE(log.find("exceeds the context of 24 positions"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out));
}

// An HF-layout T5 (relu, tied embeddings) and mT5 (gated-gelu, untied head) imported with
// bignlp-convert --from hf-t5 decode greedily exactly as the HF architecture does
// (tests/python/hf_t5_reference.py generate): the prompt is the encoder input, the output ids the
// generated decoder tokens.
class GenerateT5Test : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateT5Test, HfT5ImportDecodesGreedilyAsTheHfArchitecture) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  bignlp::TempDir dir("generate-t5");
  const fs::path hf = dir.path() / "hf", ckpt = dir.path() / "ckpt", prompts = dir.path() / "prompts.jsonl",
                 expected = dir.path() / "expected.jsonl", out = dir.path() / "out.jsonl";
  const std::string script = std::string(BIGNLP_SOURCE_DIR) + "/tests/python/hf_t5_reference.py";
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} write {} {}", script, hf.string(), GetParam())).first, 0);
  const auto [crc, clog] = run(fmt::format("{}/bignlp-convert --from hf-t5 --input {} --output {}", BIGNLP_BIN_DIR,
                                           hf.string(), ckpt.string()));
  ASSERT_EQ(crc, 0) << clog;
  bignlp::write_file_atomic(prompts, "{\"ids\": [3, 14, 15, 92, 65]}\n{\"ids\": [7]}\n"
                                     "{\"ids\": [200, 2, 7, 7, 7, 45, 12, 160, 5, 5, 99, 248]}\n{\"ids\": [33, 34]}\n");
  ASSERT_EQ(run(fmt::format("/usr/bin/python3 {} generate {} {} {} 8", script, hf.string(), prompts.string(),
                            expected.string())).first, 0);
  const auto [rc, log] = run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {} --tokens-to-generate 8 "
                                         "--batch-size 2 --end-id -1",
                                         BIGNLP_BIN_DIR, ckpt.string(), prompts.string(), out.string()));
  ASSERT_EQ(rc, 0) << log;
  const auto want = read_jsonl(expected), got = read_jsonl(out);
  ASSERT_EQ(want.size(), 4u);
  ASSERT_EQ(got.size(), want.size());
  std::set<std::string> distinct;
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]["ids"], want[i]["ids"]) << "prompt " << i;
    EXPECT_NEAR(got[i]["cum_logprob"].get<double>(), want[i]["cum_logprob"].get<double>(), 1e-4) << "prompt " << i;
    distinct.insert(got[i]["ids"].dump());
  }
  EXPECT_GT(distinct.size(), 1u) << "the outputs should depend on the encoder input";
}

INSTANTIATE_TEST_SUITE_P(Variants, GenerateT5Test, ::testing::Values("t5", "mt5"));

}  // namespace
