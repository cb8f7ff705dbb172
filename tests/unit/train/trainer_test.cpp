// The training loop end to end on a small synthetic corpus: loss falls, resume continues
// bit-identically, checkpoints are atomic, bad configs fail clearly.
#include "bignlp/train/trainer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <filesystem>
#include <random>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/indexed_dataset.h"

namespace bignlp::train {
namespace {

namespace fs = std::filesystem;
using checkpoint::find_latest_checkpoint;
using checkpoint::list_checkpoints;
using checkpoint::read_checkpoint_metadata;

/// Documents that follow a learnable rule: each token is (previous * 3 + 1) mod 50, with restarts.
fs::path write_corpus(const fs::path& dir, int documents = 60) {
  const fs::path prefix = dir / "corpus_text_document";
  data::IndexedDatasetBuilder b(prefix, data::TokenDType::kUint16);
  std::mt19937 rng(7);
  for (int d = 0; d < documents; ++d) {
    std::vector<std::int32_t> doc;
    std::int32_t tok = static_cast<std::int32_t>(rng() % 50);
    const int len = 20 + static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i) {
      doc.push_back(tok);
      tok = (tok * 3 + 1) % 50;
    }
    doc.push_back(50);  // end of document
    b.add_item(doc);
    b.end_document();
  }
  b.finalize();
  return prefix;
}

TrainingConfig small_config(const fs::path& results, const fs::path& prefix) {
  TrainingConfig c;
  c.model.vocab_size = 51;
  c.model.make_vocab_size_divisible_by = 8;
  c.model.seq_length = 16;
  c.model.num_layers = 2;
  c.model.hidden_size = 32;
  c.model.num_attention_heads = 4;
  c.model.init_method_std = 0.02f;
  c.model.hidden_dropout = 0.1f;
  c.model.attention_dropout = 0.1f;
  c.micro_batch_size = 2;
  c.global_batch_size = 4;
  c.max_steps = 8;
  c.val_check_interval = 4;
  c.limit_val_batches = 2;
  c.log_every_n_steps = 2;
  c.gradient_clip_val = 1.0;
  c.optim.lr = 5e-3;
  c.optim.beta2 = 0.95;
  c.optim.weight_decay = 0.01;
  c.sched.warmup_steps = 2;
  c.sched.min_lr = 5e-4;
  c.data.data_prefix = {prefix.string()};
  c.data.splits_string = "90,10,0";
  c.exp_manager.explicit_log_dir = results;
  c.exp_manager.save_top_k = 1;
  return c;
}

struct Harness {
  CpuAllocator alloc;
  ops::OpContext ctx;
  Logger log = Logger::capturing(LogLevel::kInfo);
  std::FILE* out = std::tmpfile();
  Harness() {
    ctx = ops::OpContext::cpu();
    ctx.allocator = &alloc;
  }
  ~Harness() { std::fclose(out); }
};

TEST(TrainerTest, LossFallsAndOutputsAreWritten) {
  TempDir dir("trainer");
  const fs::path prefix = write_corpus(dir.path());
  TrainingConfig c = small_config(dir.path() / "results", prefix);
  c.max_steps = 30;
  c.val_check_interval = 10;
  c.optim.lr = 1e-2;
  Harness h;
  Trainer t(c, h.log, h.ctx, h.out);
  const TrainResult r = t.fit();
  ASSERT_EQ(r.train_losses.size(), 30u);
  const double first = (r.train_losses[0] + r.train_losses[1]) / 2, last = (r.train_losses[28] + r.train_losses[29]) / 2;
  EXPECT_LT(last, first - 1.0) << "first " << first << " last " << last;
  RecordProperty("first_loss", std::to_string(first));
  RecordProperty("last_loss", std::to_string(last));
  ASSERT_EQ(r.val_losses.size(), 3u);
  EXPECT_LT(r.val_losses.back().second, r.val_losses.front().second);
  EXPECT_EQ(r.consumed_samples, 120);
  // Outputs: hparams, metrics.csv (15 logged steps + header), tfevents, checkpoints (top-1 + last).
  const fs::path res = dir.path() / "results";
  EXPECT_TRUE(fs::exists(res / "hparams.yaml"));
  const std::string csv = read_file(res / "metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 16);
  bool has_events = false;
  for (const auto& e : fs::directory_iterator(res))
    has_events |= e.path().filename().string().find("tfevents") != std::string::npos;
  EXPECT_TRUE(has_events);
  const auto ckpts = list_checkpoints(res / "checkpoints");
  ASSERT_EQ(ckpts.size(), 2u);
  EXPECT_EQ(ckpts.back().filename().string().substr(0, 13), "megatron_gpt-");
  EXPECT_NE(ckpts.back().filename().string().find("-step=30-consumed_samples=120.0-last"), std::string::npos);
  // The stdout lines carry the documented fields.
  std::rewind(h.out);
  char line[1024];
  ASSERT_NE(std::fgets(line, sizeof line, h.out), nullptr);
  EXPECT_EQ(std::string(line).rfind("global_step: 2 | consumed_samples: 8 | reduced_train_loss: ", 0), 0u) << line;
  EXPECT_NE(std::string(line).find("train_step_timing in s: "), std::string::npos);
}

TEST(TrainerTest, ResumeContinuesBitIdentically) {
  TempDir dir("resume");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  TrainResult full;
  {
    Trainer t(small_config(dir.path() / "a", prefix), h.log, h.ctx, h.out);
    full = t.fit();
  }
  std::atomic<int> stop{0};
  TrainResult first;
  {
    Trainer t(small_config(dir.path() / "b", prefix), h.log, h.ctx, h.out);
    t.set_stop_flag(&stop);
    t.set_step_callback([&](std::int64_t step) {
      if (step == 3) stop = 1;  // as SIGTERM would, mid-run and off the validation grid
    });
    first = t.fit();
  }
  EXPECT_EQ(first.reason, StopReason::kStopRequested);
  EXPECT_EQ(first.global_step, 3);
  TrainResult second;
  {
    Trainer t(small_config(dir.path() / "b", prefix), h.log, h.ctx, h.out);
    second = t.fit();
  }
  EXPECT_EQ(second.resumed_from_step, 3);
  std::vector<double> joined = first.train_losses;
  joined.insert(joined.end(), second.train_losses.begin(), second.train_losses.end());
  ASSERT_EQ(joined.size(), full.train_losses.size());
  for (std::size_t i = 0; i < joined.size(); ++i) EXPECT_EQ(joined[i], full.train_losses[i]) << "step " << i + 1;
  ASSERT_EQ(second.val_losses.size(), 2u);
  EXPECT_EQ(second.val_losses.back().second, full.val_losses.back().second);
}

TEST(TrainerTest, HalfWrittenCheckpointsAreNeverPickedUp) {
  TempDir dir("atomic");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  TrainingConfig c = small_config(dir.path() / "r", prefix);
  c.max_steps = 4;
  {
    Trainer t(c, h.log, h.ctx, h.out);
    t.fit();
  }
  const fs::path ckdir = dir.path() / "r" / "checkpoints";
  const auto good = find_latest_checkpoint(ckdir);
  ASSERT_TRUE(good);
  // A save killed before its rename (temp dir) and a directory missing its metadata (killed while
  // copying by hand) both claim a later step.
  fs::copy(*good, ckdir / ".tmp-megatron_gpt--val_loss=0.10-step=9-consumed_samples=36.0-last-1234abcd",
           fs::copy_options::recursive);
  fs::copy(*good, ckdir / "megatron_gpt--val_loss=0.10-step=9-consumed_samples=36.0", fs::copy_options::recursive);
  fs::remove(ckdir / "megatron_gpt--val_loss=0.10-step=9-consumed_samples=36.0" / "metadata.json");
  EXPECT_EQ(*find_latest_checkpoint(ckdir), *good);
  c.max_steps = 6;
  Trainer t(c, h.log, h.ctx, h.out);
  EXPECT_EQ(t.fit().resumed_from_step, 4);
  // The interrupted save's temporary directory was cleaned up on start.
  for (const auto& e : fs::directory_iterator(ckdir)) EXPECT_NE(e.path().filename().string().substr(0, 5), ".tmp-");
}

TEST(TrainerTest, BadConfigsGiveClearErrors) {
  TempDir dir("bad");
  const fs::path prefix = write_corpus(dir.path(), 10);
  Harness h;
  auto error_of = [&](TrainingConfig c) -> std::string {
    try {
      Trainer t(c, h.log, h.ctx, h.out);
      t.fit();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  TrainingConfig c = small_config(dir.path() / "r", prefix);
  c.global_batch_size = 5;
  EXPECT_NE(error_of(c).find("model.global_batch_size: 5 is not divisible by model.micro_batch_size 2"),
            std::string::npos);
  c = small_config(dir.path() / "r", prefix);
  c.data.data_prefix.clear();
  EXPECT_NE(error_of(c).find("model.data.data_prefix"), std::string::npos);
  c = small_config(dir.path() / "r", dir.path() / "missing_text_document");
  EXPECT_NE(error_of(c).find("missing_text_document"), std::string::npos);
  // A corrupt index: the error names the .idx file.
  const std::string idx = prefix.string() + ".idx";
  std::string bytes = read_file(idx);
  bytes[0] = 'X';
  write_file_atomic(idx, bytes);
  c = small_config(dir.path() / "r", prefix);
  const std::string err = error_of(c);
  EXPECT_NE(err.find(".idx"), std::string::npos) << err;
  RecordProperty("corrupt_idx_error", err);
}

}  // namespace
}  // namespace bignlp::train

namespace bignlp::train {
namespace {

TEST(TrainerTest, MixedPrecisionTrainsAndFp16ScalesDynamically) {
  TempDir dir("precision");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  for (model::Precision p : {model::Precision::kBf16, model::Precision::kFp16}) {
    TrainingConfig c = small_config(dir.path() / model::precision_name(p), prefix);
    c.model.precision = p;
    c.max_steps = 24;
    c.val_check_interval = 0;
    c.optim.lr = 1e-2;
    c.loss_scaler.init_scale = 65536.0 * 1024.0;  // overflows at first: the scaler must back off
    Trainer t(c, h.log, h.ctx, h.out);
    const TrainResult r = t.fit();
    ASSERT_EQ(r.train_losses.size(), 24u);
    EXPECT_LT(r.train_losses.back(), r.train_losses.front() - 0.5) << model::precision_name(p);
    const auto meta = read_checkpoint_metadata(r.last_checkpoint);
    if (p == model::Precision::kFp16) {
      EXPECT_LT(meta.loss_scaler.scale, c.loss_scaler.init_scale);
      EXPECT_LT(meta.scheduler_step, 24);  // skipped steps do not advance the schedule
      EXPECT_NE(h.log.captured().find("non-finite gradients"), std::string::npos);
    } else {
      EXPECT_EQ(meta.scheduler_step, 24);
    }
  }
}

}  // namespace
}  // namespace bignlp::train

namespace bignlp::train {
namespace {

// A diverged run (NaN loss: every step skipped) stops with an error after N such steps in a row
// and leaves the checkpoints it saved before as they were: no NaN state saved as -last.
TEST(TrainerTest, ConsecutiveNonFiniteStepsStopTheRunWithoutSaving) {
  TempDir dir("diverge");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  TrainingConfig c = small_config(dir.path() / "r", prefix);
  c.max_steps = 40;
  c.val_check_interval = 0;
  c.max_consecutive_nonfinite_steps = 5;
  c.optim.lr = 1e30;  // the first update makes every later loss non-finite
  Trainer t(c, h.log, h.ctx, h.out);
  try {
    t.fit();
    FAIL() << "a diverged run finished";
  } catch (const RuntimeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("5 steps in a row"), std::string::npos) << m;
    EXPECT_NE(m.find("Stopping without saving"), std::string::npos) << m;
  }
  bool saved = false;
  if (fs::exists(c.exp_manager.explicit_log_dir)) {
    for (const auto& e : fs::recursive_directory_iterator(c.exp_manager.explicit_log_dir)) {
      saved = saved || e.path().string().find("-last") != std::string::npos;
    }
  }
  EXPECT_FALSE(saved) << "a checkpoint was saved by the diverged run";
}

/// Flips one bit in the middle of the data section of `file` (a safetensors shard).
void damage(const fs::path& file) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  const auto size = static_cast<std::streamoff>(fs::file_size(file));
  f.seekg(size - 64);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(size - 64);
  f.write(&c, 1);
}

TEST(TrainerTest, ResumeFallsBackToTheNewestIntactCheckpointAndSaysSo) {
  TempDir dir("fallback");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  TrainingConfig c = small_config(dir.path() / "r", prefix);
  c.exp_manager.save_top_k = -1;  // keep step 4 and step 8
  {
    Trainer t(c, h.log, h.ctx, h.out);
    t.fit();
  }
  const fs::path ckdir = dir.path() / "r" / "checkpoints";
  const auto all = list_checkpoints(ckdir);
  ASSERT_EQ(all.size(), 3u);  // step 4, step 8, step 8 "-last"
  ASSERT_EQ(read_checkpoint_metadata(all[0]).global_step, 4);
  damage(all[1] / "tp_rank_00_pp_rank_000" / "model.safetensors");
  damage(all[2] / "tp_rank_00_pp_rank_000" / "optimizer.safetensors");
  c.max_steps = 10;
  Logger log = Logger::capturing(LogLevel::kInfo);
  Trainer t(c, log, h.ctx, h.out);
  const TrainResult r = t.fit();
  EXPECT_EQ(r.resumed_from_step, 4);
  const std::string text = log.captured();
  EXPECT_NE(text.find("checkpoint " + all[2].string() + " is damaged"), std::string::npos) << text;
  EXPECT_NE(text.find("checkpoint " + all[1].string() + " is damaged"), std::string::npos) << text;
  EXPECT_NE(text.find("fails its checksum"), std::string::npos) << text;
  EXPECT_NE(text.find("resuming from " + all[0].string() + ", the newest intact checkpoint (2 newer one(s) damaged)"),
            std::string::npos)
      << text;
}

TEST(TrainerTest, ResumeWithEveryCheckpointDamagedFailsNamingThem) {
  TempDir dir("alldamaged");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  TrainingConfig c = small_config(dir.path() / "r", prefix);
  c.max_steps = 4;
  {
    Trainer t(c, h.log, h.ctx, h.out);
    t.fit();
  }
  const auto all = list_checkpoints(dir.path() / "r" / "checkpoints");
  ASSERT_FALSE(all.empty());
  for (const auto& p : all) damage(p / "tp_rank_00_pp_rank_000" / "model.safetensors");
  c.max_steps = 6;
  Trainer t(c, h.log, h.ctx, h.out);
  try {
    t.fit();
    FAIL() << "resumed from a damaged checkpoint";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("every checkpoint in"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(all.back().string()), std::string::npos) << e.what();
  }
}

TEST(TrainerTest, ADivergedStateIsNeverSavedOverGoodCheckpoints) {
  TempDir dir("nosave");
  const fs::path prefix = write_corpus(dir.path());
  Harness h;
  TrainingConfig c = small_config(dir.path() / "r", prefix);
  c.max_steps = 4;
  {
    Trainer t(c, h.log, h.ctx, h.out);
    t.fit();
  }
  const fs::path ckdir = dir.path() / "r" / "checkpoints";
  const auto before = list_checkpoints(ckdir);
  ASSERT_FALSE(before.empty());
  // Resume with a learning rate that sends the weights to infinity within a step or two, and no
  // consecutive-skip limit: the save at step 8 must refuse.
  c.max_steps = 8;
  c.optim.lr = 1e30;
  c.max_consecutive_nonfinite_steps = 0;
  Trainer t(c, h.log, h.ctx, h.out);
  try {
    t.fit();
    FAIL() << "a diverged run finished";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("the weights are not finite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(list_checkpoints(ckdir), before);
  EXPECT_EQ(read_checkpoint_metadata(find_latest_checkpoint(ckdir).value()).global_step, 4);
}

}  // namespace
}  // namespace bignlp::train
