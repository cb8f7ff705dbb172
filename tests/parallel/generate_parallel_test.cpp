// Parallel generation: bignlp-generate as two gloo processes on the evaluation checkpoint
// (tests/support/eval_fixture.h) resharded to TP 2 and to PP 2, and on a FasterTransformer
// repository exported at inference TP 2, generates the greedy tokens of one process on the TP 1
// checkpoint; only rank 0 writes the output. Too few processes for a split checkpoint: refused by
// name before any rendezvous.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/reshard.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/export/fastertransformer.h"
#include "eval_fixture.h"
#include "rank_launcher.h"

namespace bignlp {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  for (const auto& line : split(read_file(p), '\n'))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(GenerateParallel, TwoTensorOrPipelineParallelRanksGenerateTheTokensOfOne) {
  TempDir dir("generate-parallel");
  test_support::write_small_bpe(dir.path() / "bpe");
  const fs::path one = dir.path() / "one", split_tp = dir.path() / "tp2", split_pp = dir.path() / "pp2";
  test_support::write_eval_checkpoint(one, dir.path() / "bpe", 21);
  checkpoint::reshard_checkpoint(one, split_tp, 2, 1, Logger("reshard"));
  checkpoint::reshard_checkpoint(one, split_pp, 1, 2, Logger("reshard"));
  exporting::FtExportOptions eo;
  eo.model_name = "m";
  eo.tensor_para_size = 2;
  eo.data_type = "fp32";
  exporting::export_fastertransformer(one, dir.path() / "repo", eo, Logger::capturing());
  const fs::path prompts = dir.path() / "prompts.jsonl";
  write_file_atomic(prompts, "{\"text\": \"the north wind and the sun\"}\n{\"ids\": [5, 260, 33]}\n"
                             "{\"text\": \"so it goes\"}\n{\"ids\": [100]}\n");
  const std::string bin = fmt::format("{}/bignlp-generate", BIGNLP_BIN_DIR);
  const auto args = [&](const std::vector<std::string>& source, const std::string& out) {
    std::vector<std::string> a = source;
    for (const std::string& s : {std::string("--input"), prompts.string(), std::string("--output"),
                                 (dir.path() / out).string(), std::string("--tokens-to-generate"), std::string("10"),
                                 std::string("--batch-size"), std::string("2"), std::string("--threads"), std::string("1")})
      a.push_back(s);
    return a;
  };
  const auto single = test_support::launch_ranks(bin, dir.path(), 1, args({"--checkpoint", one.string()}, "one.jsonl"));
  ASSERT_EQ(single[0].first, 0) << single[0].second;
  const auto want = read_jsonl(dir.path() / "one.jsonl");
  ASSERT_EQ(want.size(), 4u);
  for (const auto& [source, name] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--checkpoint", split_tp.string()}, "tp2.jsonl"},
           {{"--checkpoint", split_pp.string()}, "pp2.jsonl"},
           {{"--model-repo", (dir.path() / "repo").string(), "--precision", "32"}, "repo.jsonl"}}) {
    const auto two = test_support::launch_ranks(bin, dir.path(), 2, args(source, name));
    for (const auto& [status, log] : two) ASSERT_EQ(status, 0) << log;
    const auto got = read_jsonl(dir.path() / name);
    ASSERT_EQ(got.size(), want.size()) << name;
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i]["ids"], want[i]["ids"]) << name << " prompt " << i;
      EXPECT_EQ(got[i]["text"], want[i]["text"]) << name << " prompt " << i;
      // The all-reduces sum in another order: the same tokens, log-probabilities within rounding.
      EXPECT_NEAR(got[i]["cum_logprob"].get<double>(), want[i]["cum_logprob"].get<double>(), 1e-4) << name;
    }
    EXPECT_EQ(two[1].second.find("generated for"), std::string::npos) << two[1].second;
  }
  // One process for a two-rank checkpoint: refused, naming the layout, before any rendezvous.
  const auto lone = test_support::launch_ranks(bin, dir.path(), 1, args({"--checkpoint", split_pp.string()}, "lone.jsonl"));
  EXPECT_NE(lone[0].first, 0);
  EXPECT_NE(lone[0].second.find("is split TP 1 x PP 2 = 2 ranks, but 1 processes were started"), std::string::npos)
      << lone[0].second;
  EXPECT_FALSE(fs::exists(dir.path() / "lone.jsonl"));
}

}  // namespace
}  // namespace bignlp
