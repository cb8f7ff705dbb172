// PromptModel: several tasks in one batch, existing (frozen) tables next to new ones, the frozen
// base, and the inference path (table row = id - pseudo start).
#include <gtest/gtest.h>

#include <cstring>

#include "bignlp/model/gpt.h"
#include "bignlp/train/optimizer.h"
#include "bignlp/tune/prompt_model.h"

using namespace bignlp;
using namespace bignlp::tune;

namespace {

model::GptConfig tiny_gpt() {
  model::GptConfig c;
  c.vocab_size = 100;
  c.make_vocab_size_divisible_by = 64;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.num_layers = 1;
  c.hidden_size = 16;
  c.ffn_hidden_size = 32;
  c.num_attention_heads = 2;
  c.init_method_std = 0.2f;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  return c;
}

struct Fixture {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  std::unique_ptr<PromptModel> m;
  model::GptModel* gpt = nullptr;
  explicit Fixture(PromptStyle style) {
    ctx.allocator = &alloc;
    auto base = std::make_unique<model::GptModel>(tiny_gpt(), ctx, parallel::ParallelContext{},
                                                  [](const model::Parameter&) { return false; });
    base->initialize(5);
    gpt = base.get();
    PromptModelConfig pc;
    pc.style = style;
    pc.virtual_tokens = 3;
    pc.pseudo_start = 100;
    pc.pad_id = 99;
    pc.tasks.push_back(PromptTaskSpec{"old", {7}, /*is_new=*/false, {}});
    pc.tasks.push_back(PromptTaskSpec{"new", {8, 9}, /*is_new=*/true, {}});
    m = std::make_unique<PromptModel>(pc, std::move(base), ctx);
    m->initialize(3);
    std::vector<float> old_rows(3 * 16);
    for (std::size_t i = 0; i < old_rows.size(); ++i) old_rows[i] = 0.01f * static_cast<float>(i % 7);
    m->set_table("old", old_rows);
  }
};

struct TwoTaskBatch {
  std::vector<std::int32_t> tokens = {100, 101, 102, 5, 6, 7,  //
                                      100, 101, 102, 8, 9, 10};
  std::vector<std::int32_t> labels = {101, 102, 5, 6, 7, 8,  //
                                      101, 102, 8, 9, 10, 11};
  std::vector<float> mask = {0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
  std::vector<std::int32_t> tasks = {0, 1};
  model::Batch view() {
    model::Batch b;
    b.tokens = TensorView(tokens.data(), DType::kI32, Shape{2, 6});
    b.labels = TensorView(labels.data(), DType::kI32, Shape{2, 6});
    b.loss_mask = TensorView(mask.data(), DType::kF32, Shape{2, 6});
    b.task_ids = TensorView(tasks.data(), DType::kI32, Shape{2});
    return b;
  }
};

TEST(PromptModel, NewTasksTrainExistingTablesAndTheBaseStayFrozen) {
  for (PromptStyle style : {PromptStyle::kPTuning, PromptStyle::kPromptTuning}) {
    Fixture f(style);
    // Trainable: the encoder (p-tuning) or the new task's table; the old table is frozen.
    for (const auto& p : f.m->parameters().params()) {
      const bool old_table = p.name == prompt_table_key("old");
      EXPECT_EQ(p.trainable, !old_table) << p.name;
    }
    EXPECT_EQ(f.m->parameters().find(prompt_table_key("new")) != nullptr, style == PromptStyle::kPromptTuning);
    const std::vector<float> base_before(f.gpt->parameters().flat_value().data<float>(),
                                         f.gpt->parameters().flat_value().data<float>() + f.gpt->parameters().numel());
    const std::vector<float> old_before = host_values(f.ctx, *f.m->parameters().find(prompt_table_key("old")));
    std::vector<float> trainable_before(f.m->parameters().flat_value().data<float>(),
                                        f.m->parameters().flat_value().data<float>() + f.m->parameters().trainable_numel());
    TwoTaskBatch batch;
    train::OptimizerConfig oc;
    oc.lr = 0.05;
    train::AdamOptimizer opt(f.m->parameters(), oc, f.ctx, parallel::ParallelContext{}, nullptr);
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < 15; ++step) {
      f.m->parameters().zero_grad(f.ctx);
      const float loss = f.m->train_micro_batch(batch.view(), model::DropoutRng{}, 1.0f);
      if (step == 0) first = loss;
      last = loss;
      opt.step(oc.lr, 1.0, 1.0);
    }
    EXPECT_LT(last, first - 0.1f) << "style " << prompt_style_name(style);
    EXPECT_EQ(std::memcmp(base_before.data(), f.gpt->parameters().flat_value().data<float>(),
                          base_before.size() * sizeof(float)),
              0);
    EXPECT_EQ(host_values(f.ctx, *f.m->parameters().find(prompt_table_key("old"))), old_before);
    bool changed = false;
    for (std::int64_t i = 0; i < f.m->parameters().trainable_numel(); ++i)
      changed |= f.m->parameters().flat_value().data<float>()[i] != trainable_before[static_cast<std::size_t>(i)];
    EXPECT_TRUE(changed);
    // The final tables: both tasks, n x h each.
    const auto tables = f.m->final_tables();
    ASSERT_EQ(tables.size(), 2u);
    EXPECT_EQ(tables.at("old"), old_before);
    EXPECT_EQ(tables.at("new").size(), 3u * 16u);
  }
}

TEST(PromptModel, ScoringWithTablesEqualsTrainingWithTheEncoderOutput) {
  // The inference path (row id - start of the task's table) reproduces the p-tuning forward once
  // the encoder's output is the table.
  Fixture f(PromptStyle::kPTuning);
  TwoTaskBatch batch;
  batch.tasks = {1, 1};
  const float loss_train = f.m->evaluate(batch.view());
  const auto tables = f.m->final_tables();
  PromptModelConfig pc = f.m->prompt_config();
  pc.style = PromptStyle::kInference;
  for (auto& t : pc.tasks) t.is_new = false;
  auto base = std::make_unique<model::GptModel>(tiny_gpt(), f.ctx, parallel::ParallelContext{},
                                                [](const model::Parameter&) { return false; });
  base->initialize(5);
  PromptModel inf(pc, std::move(base), f.ctx);
  for (const auto& [name, rows] : tables) inf.set_table(name, rows);
  EXPECT_NEAR(inf.evaluate(batch.view()), loss_train, 1e-6);
  // A row of a new task with the wrong number of virtual tokens is refused.
  batch.tokens[1] = 5;
  EXPECT_THROW(f.m->evaluate(batch.view()), DataError);
}

}  // namespace
