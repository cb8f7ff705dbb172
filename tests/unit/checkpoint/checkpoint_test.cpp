// Saving and loading through the OptimizerState interface (no trainer involved), the version-2
// metadata keys next to the version-1 ones, and refusals of what this code cannot read.
#include "bignlp/model/gpt.h"
#include "bignlp/checkpoint/checkpoint.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/ops/ops.h"

namespace bignlp::checkpoint {
namespace {

namespace fs = std::filesystem;

model::GptConfig tiny_config() {
  model::GptConfig c;
  c.vocab_size = 51;
  c.make_vocab_size_divisible_by = 8;
  c.seq_length = 8;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  return c;
}

/// A replicated Adam-like state: moments laid out like the store's gradients.
class ToyOptimizer final : public OptimizerState {
 public:
  explicit ToyOptimizer(const model::ParameterStore& store)
      : m_(static_cast<std::size_t>(store.flat_grad().numel())), v_(m_.size()) {}
  std::int64_t steps() const override { return steps_; }
  void set_steps(std::int64_t s) override { steps_ = s; }
  bool sharded() const override { return false; }
  TensorView exp_avg() const override { return flat(m_); }
  TensorView exp_avg_sq() const override { return flat(v_); }
  void gather_state(bool, std::vector<float>&, std::vector<float>&, std::vector<float>&) override {
    FAIL() << "a replicated state is never gathered";
  }
  void assign_moments(const model::Parameter& p, const TensorView& m, const TensorView& v) override {
    ops::copy(ops::OpContext::cpu(), m.reshape(Shape{p.numel()}), flat(m_).slice(0, p.offset, p.numel()));
    ops::copy(ops::OpContext::cpu(), v.reshape(Shape{p.numel()}), flat(v_).slice(0, p.offset, p.numel()));
  }
  std::vector<float> m_, v_;
  std::int64_t steps_ = 0;

 private:
  TensorView flat(const std::vector<float>& x) const {
    return TensorView(const_cast<float*>(x.data()), DType::kF32, Shape{static_cast<std::int64_t>(x.size())});
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

TEST(CheckpointTest, SavesAndLoadsWeightsMomentsAndTheVersionTwoMetadata) {
  TempDir dir("ckpt");
  Cpu cpu;
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  ToyOptimizer opt_a(a.parameters());
  for (std::size_t i = 0; i < opt_a.m_.size(); ++i) {
    opt_a.m_[i] = 0.5f * static_cast<float>(i);
    opt_a.v_[i] = static_cast<float>(i % 13);
  }
  opt_a.set_steps(11);
  CheckpointState st;
  st.global_step = 11;
  st.model = a.config_json();
  st.optimizer_steps = 11;
  st.model_config = nlohmann::json{{"num_layers", 2}, {"optim", {{"name", "fused_adam"}}}, {"tokenizer", nullptr}};
  st.tokenizer = {{"library", "megatron"}};
  const fs::path ckpt = dir.path() / "checkpoints" / "step11";
  save_checkpoint(ckpt, st, a.parameters(), &opt_a, cpu.ctx);
  EXPECT_EQ(list_checkpoints(dir.path() / "checkpoints"), std::vector<fs::path>{ckpt});

  model::GptModel b(tiny_config(), cpu.ctx);
  b.initialize(8);
  ToyOptimizer opt_b(b.parameters());
  load_checkpoint(ckpt, b.parameters(), &opt_b, cpu.ctx);
  EXPECT_EQ(opt_b.steps(), 11);
  EXPECT_EQ(opt_b.m_, opt_a.m_);
  EXPECT_EQ(opt_b.v_, opt_a.v_);
  const TensorView wa = a.parameters().flat_value(), wb = b.parameters().flat_value();
  EXPECT_EQ(std::memcmp(wa.raw(), wb.raw(), wa.nbytes()), 0);

  const CheckpointState back = read_checkpoint_metadata(ckpt);
  EXPECT_EQ(back.format_version, kFormatVersion);
  EXPECT_EQ(back.family, "gpt");
  EXPECT_EQ(back.model_config, st.model_config);
  EXPECT_TRUE(back.has_optimizer_state);
  // The version-1 keys are all still written, so older readers read this checkpoint.
  const auto meta = nlohmann::json::parse(read_file(ckpt / "metadata.json"));
  for (const char* key : {"format", "version", "global_step", "consumed_samples", "val_loss", "scheduler_step",
                          "optimizer_steps", "loss_scaler", "seed", "model", "precision", "tokenizer",
                          "tensor_model_parallel_size", "pipeline_model_parallel_size", "has_optimizer_state",
                          "family", "model_config", "weights_dtype", "virtual_pipeline_model_parallel_size"})
    EXPECT_TRUE(meta.contains(key)) << key;
  EXPECT_EQ(meta["version"], 2);
  EXPECT_EQ(meta["weights_dtype"], "fp32");
}

TEST(CheckpointTest, RefusesNewerVersionsAndDoesNotBuildUnknownFamilies) {
  TempDir dir("ckpt-refuse");
  Cpu cpu;
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  CheckpointState st;
  st.model = a.config_json();
  save_checkpoint(dir.path() / "c", st, a.parameters(), nullptr, cpu.ctx);
  auto meta = nlohmann::json::parse(read_file(dir.path() / "c" / "metadata.json"));
  auto rewrite = [&](const nlohmann::json& m) { write_file_atomic(dir.path() / "c" / "metadata.json", m.dump()); };
  auto error = [&] {
    try {
      read_checkpoint_metadata(dir.path() / "c");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  nlohmann::json m = meta;
  m["version"] = kFormatVersion + 1;
  rewrite(m);
  EXPECT_NE(error().find("format version 3 is not readable here"), std::string::npos) << error();
  // A family this build does not know reads, but does not build.
  m = meta;
  m["family"] = "bert";
  rewrite(m);
  EXPECT_EQ(read_checkpoint_metadata(dir.path() / "c").family, "bert");
  try {
    load_model_from_checkpoint(dir.path() / "c", cpu.ctx);
    ADD_FAILURE() << "an unknown family must not load";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model family 'bert'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir.path() / "c").string()), std::string::npos) << e.what();
  }
  // A checkpoint without optimizer state cannot resume an optimizer.
  rewrite(meta);
  model::GptModel b(tiny_config(), cpu.ctx);
  ToyOptimizer opt(b.parameters());
  EXPECT_THROW(load_checkpoint(dir.path() / "c", b.parameters(), &opt, cpu.ctx), DataError);
}

TEST(CheckpointTest, AFailedSaveLeavesNothingBehind) {
  TempDir dir("ckpt-fail");
  Cpu cpu;
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  CheckpointState st;
  st.model = a.config_json();
  ToyOptimizer opt(a.parameters());
  opt.m_.resize(3);  // the moments do not cover the parameters: the shard writer refuses
  EXPECT_ANY_THROW(save_checkpoint(dir.path() / "c", st, a.parameters(), &opt, cpu.ctx));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace bignlp::checkpoint
