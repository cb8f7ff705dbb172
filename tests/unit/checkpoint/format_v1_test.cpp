// Checkpoints of format version 1 (tests/data/checkpoints/format_v1, written by the code before the
// checkpoint library existed) still load: the model computes the loss and log-probabilities that
// code recorded, every parameter holds the recorded bytes, and resharding reproduces that code's
// TP 2 x PP 2 shards and its TP 1 x PP 1 checkpoint bit for bit.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bignlp/model/gpt.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/metadata.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/tensor/safetensors.h"

namespace bignlp::checkpoint {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(BIGNLP_SOURCE_DIR) / "tests/data/checkpoints/format_v1";

std::string hash_hex(const TensorView& t) {
  const std::string bytes(static_cast<const char*>(t.raw()), t.nbytes());
  return fmt::format("{:016x}", model::fnv1a64(bytes));
}

struct Fixture {
  nlohmann::json expected = nlohmann::json::parse(read_file(kFixtures / "expected.json"));
  std::vector<std::int32_t> tokens = expected["eval_batch"]["tokens"].get<std::vector<std::int32_t>>();
  std::vector<std::int32_t> labels = expected["eval_batch"]["labels"].get<std::vector<std::int32_t>>();
  model::Batch batch() {
    model::Batch b;
    b.tokens = TensorView(tokens.data(), DType::kI32, Shape{2, 8});
    b.labels = TensorView(labels.data(), DType::kI32, Shape{2, 8});
    return b;
  }
};

struct Cpu {
  CpuAllocator alloc;
  ops::OpContext ctx = [this] {
    ops::OpContext c = ops::OpContext::cpu();
    c.allocator = &alloc;
    return c;
  }();
};

TEST(FormatV1Test, MetadataReadsWithTheDefaultsOfVersionOne) {
  const CheckpointState s = read_checkpoint_metadata(kFixtures / "gpt_tp1_pp1");
  EXPECT_EQ(s.format_version, 1);
  EXPECT_EQ(s.family, "gpt");
  EXPECT_TRUE(s.model_config.is_null());
  EXPECT_EQ(s.virtual_pp_size, 1);
  EXPECT_EQ(s.weights_dtype, DType::kF32);
  EXPECT_EQ(s.global_step, 3);
  EXPECT_EQ(s.consumed_samples, 6);
  EXPECT_EQ(s.optimizer_steps, 3);
  EXPECT_TRUE(s.has_optimizer_state);
  EXPECT_EQ(s.tokenizer.at("type"), "GPT2BPETokenizer");
  EXPECT_EQ(s.model.get<model::GptConfig>().num_layers, 2);
  EXPECT_EQ(s.model.get<model::GptConfig>().hidden_size, 16);
  EXPECT_EQ(s.model.get<model::GptConfig>().padded_vocab_size(), 56);
  const CheckpointState wide = read_checkpoint_metadata(kFixtures / "gpt_tp2_pp2");
  EXPECT_EQ(wide.tp_size, 2);
  EXPECT_EQ(wide.pp_size, 2);
}

TEST(FormatV1Test, TheLoadedModelComputesTheRecordedValues) {
  Fixture f;
  Cpu cpu;
  auto gpt = load_model_from_checkpoint(kFixtures / "gpt_tp1_pp1", cpu.ctx);
  for (const auto& p : gpt->parameters().params()) {
    ASSERT_TRUE(f.expected["param_fnv1a64"].contains(p.name)) << p.name;
    EXPECT_EQ(hash_hex(p.value), f.expected["param_fnv1a64"][p.name].get<std::string>()) << p.name;
  }
  EXPECT_EQ(gpt->parameters().params().size(), f.expected["param_fnv1a64"].size());
  const double loss = f.expected["eval_loss"].get<double>();
  EXPECT_NEAR(gpt->evaluate(f.batch()), loss, 1e-5);
  const auto logprob = f.expected["eval_logprob"].get<std::vector<float>>();
  const auto scores = gpt->score(f.batch());
  ASSERT_EQ(scores.logprob.size(), logprob.size());
  for (std::size_t i = 0; i < logprob.size(); ++i) EXPECT_NEAR(scores.logprob[i], logprob[i], 1e-5) << i;
  // The comparison can tell weights apart: the same model freshly initialised scores otherwise.
  model::GptModel fresh(gpt->config_json().get<model::GptConfig>(), cpu.ctx);
  fresh.initialize(1234);
  EXPECT_GT(std::abs(fresh.evaluate(f.batch()) - loss), 1e-3);
}

/// Every tensor of every shard file of `a` equals (bytes) the one of the same name in `b`.
void expect_same_shards(const fs::path& a, const fs::path& b, int tp, int pp) {
  for (int t = 0; t < tp; ++t) {
    for (int p = 0; p < pp; ++p) {
      for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
        const fs::path shard = fs::path(checkpoint_shard_name(t, p)) / file;
        SafetensorsReader ra(a / shard), rb(b / shard);
        ASSERT_EQ(ra.entries().size(), rb.entries().size()) << shard;
        for (const auto& e : ra.entries()) {
          ASSERT_NE(rb.find(e.name), nullptr) << shard << " " << e.name;
          EXPECT_EQ(hash_hex(ra.view(e.name)), hash_hex(rb.view(e.name))) << shard << " " << e.name;
        }
      }
    }
  }
}

TEST(FormatV1Test, ReshardingReproducesTheRecordedLayouts) {
  TempDir dir("format-v1");
  const Logger log = Logger::capturing(LogLevel::kWarn);
  reshard_checkpoint(kFixtures / "gpt_tp1_pp1", dir.path() / "tp2_pp2", 2, 2, log);
  expect_same_shards(dir.path() / "tp2_pp2", kFixtures / "gpt_tp2_pp2", 2, 2);
  reshard_checkpoint(kFixtures / "gpt_tp2_pp2", dir.path() / "tp1_pp1", 1, 1, log);
  expect_same_shards(dir.path() / "tp1_pp1", kFixtures / "gpt_tp1_pp1", 1, 1);
  // The output is written in the current version, with the input's state.
  const CheckpointState s = read_checkpoint_metadata(dir.path() / "tp1_pp1");
  EXPECT_EQ(s.format_version, kFormatVersion);
  EXPECT_EQ(s.optimizer_steps, 3);
  EXPECT_EQ(s.model.get<model::GptConfig>().padded_vocab_size(), 56);
}

}  // namespace
}  // namespace bignlp::checkpoint
