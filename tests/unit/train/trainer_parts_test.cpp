// The trainer assembled from injected parts: a model family that exists only in the tests (via a
// model factory over a registry), an in-memory batch source and a custom evaluator. Nothing in the
// trainer knows the family: the loss still falls, the evaluator's value drives validation, and a
// run resumes from its checkpoint.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bignlp/core/file_io.h"
#include "bignlp/train/trainer.h"
#include "toy_decoder_family.h"

namespace bignlp::train {
namespace {

namespace fs = std::filesystem;

/// Sample k: tokens follow tok' = (tok * 3 + 1) mod 50 from a start that depends on k.
class RuleBatches final : public BatchSource {
 public:
  RuleBatches(std::int64_t micro_batch, std::int64_t seq) : b_(micro_batch), t_(seq) {}
  model::Batch batch(std::int64_t first) override {
    tokens_.clear();
    labels_.clear();
    for (std::int64_t s = first; s < first + b_; ++s) {
      std::int32_t tok = static_cast<std::int32_t>((s * 7) % 50);
      for (std::int64_t i = 0; i <= t_; ++i) {
        if (i < t_) tokens_.push_back(tok);
        if (i > 0) labels_.push_back(tok);
        tok = (tok * 3 + 1) % 50;
      }
    }
    const Shape bt{b_, t_};
    return model::Batch{.tokens = TensorView(tokens_.data(), DType::kI32, bt),
                        .labels = TensorView(labels_.data(), DType::kI32, bt)};
  }
  std::int64_t size() const override { return 1 << 20; }

 private:
  std::int64_t b_, t_;
  std::vector<std::int32_t> tokens_, labels_;
};

TrainingConfig toy_config(const fs::path& results) {
  TrainingConfig c;
  c.model.vocab_size = 51;
  c.model.make_vocab_size_divisible_by = 8;
  c.model.seq_length = 16;
  c.model.num_layers = 2;
  c.model.hidden_size = 32;
  c.model.num_attention_heads = 4;
  c.model.hidden_dropout = 0.0f;
  c.model.attention_dropout = 0.0f;
  c.micro_batch_size = 2;
  c.global_batch_size = 4;
  c.max_steps = 12;
  c.val_check_interval = 6;
  c.log_every_n_steps = 6;
  c.optim.lr = 1e-2;
  c.sched.warmup_steps = 2;
  c.sched.min_lr = 1e-3;
  c.exp_manager.explicit_log_dir = results;
  c.exp_manager.save_top_k = 1;
  return c;
}

TEST(TrainerParts, TrainsAFamilyTheTrainerDoesNotKnow) {
  TempDir dir("trainer-parts");
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const Logger log = Logger::capturing(LogLevel::kInfo);
  const TrainingConfig cfg = toy_config(dir.path() / "results");
  const model::ModelFamilyRegistry registry = test_support::registry_with_toy_family();
  std::vector<std::int64_t> evaluated_at;
  std::string built_family;
  const auto parts = [&] {
    TrainerParts p;
    p.model = [&](const parallel::ParallelContext& pc) {
      auto m = registry.build("toy-llama", nlohmann::json(cfg.model), ctx, pc);
      built_family = std::string(m->family());
      return m;
    };
    p.train_batches = std::make_shared<RuleBatches>(cfg.micro_batch_size, cfg.model.seq_length);
    p.evaluator = [&](model::Model& m, std::int64_t step) -> std::optional<double> {
      evaluated_at.push_back(step);
      RuleBatches held_out(cfg.micro_batch_size, cfg.model.seq_length);
      return m.evaluate(held_out.batch(100000));
    };
    return p;
  };
  std::FILE* out = std::tmpfile();
  Trainer trainer(cfg, log, ctx, out, parts());
  const TrainResult r = trainer.fit();
  std::fclose(out);
  EXPECT_EQ(built_family, "toy-llama");
  ASSERT_EQ(r.train_losses.size(), 12u);
  EXPECT_LT(r.train_losses.back(), 0.8 * r.train_losses.front())
      << "first " << r.train_losses.front() << " last " << r.train_losses.back();
  EXPECT_EQ(evaluated_at, (std::vector<std::int64_t>{6, 12}));
  ASSERT_EQ(r.val_losses.size(), 2u);
  EXPECT_LT(r.val_losses[1].second, r.val_losses[0].second);
  ASSERT_FALSE(r.last_checkpoint.empty());

  // A second run resumes from the checkpoint with the same parts and continues to step 16.
  TrainingConfig more = cfg;
  more.max_steps = 16;
  std::FILE* out2 = std::tmpfile();
  Trainer again(more, log, ctx, out2, parts());
  const TrainResult r2 = again.fit();
  std::fclose(out2);
  EXPECT_EQ(r2.resumed_from_step, 12);
  EXPECT_EQ(r2.global_step, 16);
  EXPECT_EQ(r2.train_losses.size(), 4u);
}

}  // namespace
}  // namespace bignlp::train
