// T5 training on several thread ranks against the same training on one rank (the GPT pattern of
// gpt_parallel_test.cpp): TP 2, DP 2 with and without the distributed optimizer, TP 2 x DP 2, and
// activation checkpointing; the losses of every step and every final weight agree within fp32
// tolerance. Dropout is on (embedding, hidden, attention). Batches are synthetic span-corruption-
// shaped encoder/decoder pairs with padding (the T5 dataset is its own library). Pipeline
// parallelism with the encoder/decoder split (PP 2 split 1, PP 3 split 1, PP 4 split 2, PP 2 with
// TP 2 and with DP 2 and the distributed optimizer, with activation checkpointing) equals one rank
// too, and every stage's copy of a tied table equals the table; the PP 2 model scores
// (eval::score_loglikelihood) like one rank. Checkpoints of a T5 run resume (TP 2 and PP 2), and
// reshard TP 2 -> TP 1 -> TP 2 and PP 2 -> PP 1 -> PP 2 exactly. Sequence
// parallelism (TP 2, with relative positions and activation checkpointing, and with PP 2) equals
// one rank as well; a pipeline without a valid split rank is refused with a message naming the key.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <mutex>
#include <random>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/eval/loglikelihood.h"
#include "bignlp/model/t5.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/safetensors.h"
#include "bignlp/train/batch_source.h"
#include "bignlp/train/trainer.h"

namespace bignlp::train {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::int64_t kTe = 12, kTd = 8, kVocab = 60;

/// Sample i: encoder tokens with 6..12 valid positions, decoder input/labels with 3..8, padding 0.
class SyntheticT5Batches final : public BatchSource {
 public:
  explicit SyntheticT5Batches(std::int64_t micro_batch) : b_(micro_batch) {}
  model::Batch batch(std::int64_t first) override {
    enc_.assign(static_cast<std::size_t>(b_ * kTe), 0);
    dec_.assign(static_cast<std::size_t>(b_ * kTd), 0);
    lab_.assign(static_cast<std::size_t>(b_ * kTd), 0);
    mask_.assign(static_cast<std::size_t>(b_ * kTd), 0.0f);
    enc_len_.resize(static_cast<std::size_t>(b_));
    dec_len_.resize(static_cast<std::size_t>(b_));
    for (std::int64_t r = 0; r < b_; ++r) {
      std::mt19937 rng(static_cast<std::uint32_t>(first + r) * 7919u + 1);
      const int le = 6 + static_cast<int>(rng() % 7), ld = 3 + static_cast<int>(rng() % 6);
      enc_len_[r] = le;
      dec_len_[r] = ld;
      for (int t = 0; t < le; ++t) enc_[r * kTe + t] = 1 + static_cast<int>(rng() % (kVocab - 1));
      for (int t = 0; t < ld; ++t) {
        lab_[r * kTd + t] = enc_[r * kTe + (t % le)];  // learnable: copy the encoder's tokens
        dec_[r * kTd + t] = t == 0 ? 1 : lab_[r * kTd + t - 1];
        mask_[r * kTd + t] = 1.0f;
      }
    }
    return model::Batch{.tokens = TensorView(dec_.data(), DType::kI32, Shape{b_, kTd}),
                        .labels = TensorView(lab_.data(), DType::kI32, Shape{b_, kTd}),
                        .loss_mask = TensorView(mask_.data(), DType::kF32, Shape{b_, kTd}),
                        .encoder_tokens = TensorView(enc_.data(), DType::kI32, Shape{b_, kTe}),
                        .encoder_lengths = TensorView(enc_len_.data(), DType::kI32, Shape{b_}),
                        .decoder_lengths = TensorView(dec_len_.data(), DType::kI32, Shape{b_})};
  }
  std::int64_t size() const override { return 1 << 20; }

 private:
  std::int64_t b_;
  std::vector<std::int32_t> enc_, dec_, lab_, enc_len_, dec_len_;
  std::vector<float> mask_;
};

struct Layout {
  int tp = 1, pp = 1, dp = 1;
  int split = 1;  // pipeline_model_parallel_split_rank when pp > 1
  bool sp = false;
  bool distributed_optimizer = false;
  bool recompute = false;
  bool relative = false;
  model::Precision precision = model::Precision::kFp32;
  int world() const { return tp * pp * dp; }
};

TrainingConfig config_for(const Layout& l, const fs::path& results, int steps) {
  model::T5Config t;
  t.vocab_size = kVocab;
  t.make_vocab_size_divisible_by = 16;  // 64 rows at TP 1 and 2
  t.encoder_seq_length = kTe;
  t.decoder_seq_length = kTd;
  t.max_position_embeddings = kTe;
  for (model::T5StackConfig* s : {&t.encoder, &t.decoder}) {
    s->num_layers = 2;
    s->hidden_size = 32;
    s->ffn_hidden_size = 48;
    s->num_attention_heads = 4;
    s->init_method_std = 0.05f;
    s->hidden_dropout = 0.1f;
    s->attention_dropout = 0.1f;
    s->activation = "geglu";
    if (l.relative) {
      s->position_embedding_type = "relative";
      s->relative_attention_num_buckets = 8;
      s->relative_attention_max_distance = 16;
    }
    if (l.recompute) {
      s->activations_checkpoint.granularity = model::CheckpointGranularity::kFull;
      s->activations_checkpoint.method = model::CheckpointMethod::kUniform;
      s->activations_checkpoint.num_layers = 1;
    }
  }
  t.embedding_init_method_std = 0.05f;
  t.embedding_dropout = 0.1f;
  t.tensor_model_parallel_size = l.tp;
  t.pipeline_model_parallel_split_rank = l.pp > 1 ? l.split : 0;
  t.decoder_start_token_id = 1;
  t.precision = l.precision;
  TrainingConfig c;
  c.model_family = "t5";
  c.family_config = nlohmann::json(t);
  c.model.vocab_size = kVocab;
  c.model.seq_length = kTe;
  c.model.tensor_model_parallel_size = l.tp;
  c.model.precision = l.precision;  // fp16: the trainer's dynamic loss scaler
  // 2^32 (NeMo's default) overflows the first fp16 steps of this small model, which are then
  // skipped as Megatron skips them; 2^12 starts where no step overflows.
  c.loss_scaler.init_scale = 4096.0;
  c.pipeline_model_parallel_size = l.pp;
  c.sequence_parallel = l.sp;
  c.devices = l.world();
  c.micro_batch_size = 2;
  c.global_batch_size = 8;
  c.max_steps = steps;
  c.val_check_interval = 0;
  c.log_every_n_steps = 1;
  c.gradient_clip_val = 1.0;
  c.optim.name = l.distributed_optimizer ? "distributed_fused_adam" : "fused_adam";
  c.optim.lr = 3e-3;
  c.optim.beta2 = 0.95;
  c.optim.weight_decay = 0.01;
  c.sched.warmup_steps = 1;
  c.sched.min_lr = 3e-4;
  c.grad_bucket_mb = 0.004;
  c.exp_manager.explicit_log_dir = results;
  c.exp_manager.create_checkpoint_callback = false;
  c.exp_manager.resume_if_exists = false;
  c.cpu_threads = 1;
  return c;
}

using Tensors = std::map<std::string, std::vector<float>>;

struct Outcome {
  std::vector<double> losses;
  Tensors weights;
  /// Log-likelihoods of scoring_requests() with the trained model (eval::score_loglikelihood).
  std::vector<eval::LoglikelihoodResult> scores;
  /// Pipeline-stage copies of tied tables, each with the name of the table it copies.
  std::vector<std::pair<std::string, std::vector<float>>> copies;
};

/// This rank's shard of every parameter into the full tensors of `out` (pipeline-stage copies of a
/// tied table into `copies`, as this shard's part of the full table, NaN elsewhere).
void collect(const model::ParameterStore& store, Tensors& out, std::mutex& mu,
             std::vector<std::pair<std::string, std::vector<float>>>* copies = nullptr) {
  std::lock_guard lock(mu);
  for (const auto& p : store.params()) {
    Tensors copy_of;
    if (p.shared && copies == nullptr) continue;
    std::vector<float> local(static_cast<std::size_t>(p.numel()));
    ops::copy(ops::OpContext::cpu(), p.value, TensorView(local.data(), DType::kF32, p.shape));
    Shape full = p.shape;
    if (p.tensor_parallel()) full.set(p.partition_dim, p.shape[p.partition_dim] * p.tp_size);
    const std::string renamed = p.shared ? model::t5_copy_source(p.name) : std::string();
    const std::string source = renamed.empty() ? p.name : renamed;
    auto& dst = p.shared ? copy_of[source] : out[p.name];
    if (dst.empty()) dst.assign(static_cast<std::size_t>(full.numel()), std::nanf(""));
    const std::int64_t rows = p.shape[0], cols = p.shape.rank() == 2 ? p.shape[1] : 1;
    const std::int64_t full_cols = full.rank() == 2 ? full[1] : 1;
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) {
        std::int64_t fi = i, fj = j;
        if (p.tensor_parallel() && p.partition_dim == 0) fi += p.tp_rank * rows;
        if (p.tensor_parallel() && p.partition_dim == 1) fj += p.tp_rank * cols;
        float& slot = dst[static_cast<std::size_t>(fi * full_cols + fj)];
        if (std::isnan(slot)) slot = local[static_cast<std::size_t>(i * cols + j)];
      }
    if (p.shared) copies->emplace_back(source, std::move(copy_of[source]));
  }
}

/// Requests of several encoder and decoder lengths (batches of 2 pad them).
std::vector<eval::LoglikelihoodRequest> scoring_requests() {
  std::vector<eval::LoglikelihoodRequest> r;
  for (int i = 0; i < 5; ++i) {
    eval::LoglikelihoodRequest q;
    for (int t = 0; t < 4 + 2 * i; ++t) q.context.push_back(1 + (7 * i + 3 * t) % (kVocab - 1));
    for (int t = 0; t < 1 + i % 3; ++t) q.continuation.push_back(q.context[static_cast<std::size_t>(t)]);
    r.push_back(q);
  }
  return r;
}

Outcome run(const Layout& l, const fs::path& results, int steps, bool resume = false, bool checkpoint = false,
            bool score = false) {
  Outcome out;
  std::mutex mu;
  comm::LocalWorld world(l.world(), 60s);
  world.run([&](comm::Communicator& w) {
    CpuAllocator alloc;
    ops::OpContext ctx = ops::OpContext::cpu(1);
    ctx.allocator = &alloc;
    const comm::ProcessGrid grid(l.world(), w.rank(), l.tp, l.pp);
    auto groups = comm::ParallelGroups::create(w, grid);
    TrainingConfig c = config_for(l, results, steps);
    c.exp_manager.resume_if_exists = resume;
    c.exp_manager.create_checkpoint_callback = checkpoint;
    Logger log = Logger::capturing(LogLevel::kWarn);
    std::FILE* sink = std::tmpfile();
    TrainerParts parts;
    parts.train_batches = std::make_shared<SyntheticT5Batches>(c.micro_batch_size);
    Trainer t(c, log, ctx, sink, parts);
    t.set_parallel(parallel::ParallelContext::from(groups, parallel::ParallelOptions{}));
    const TrainResult r = t.fit();
    std::fclose(sink);
    if (w.rank() == 0) out.losses = r.train_losses;
    if (grid.dp_rank() == 0) collect(t.model()->parameters(), out.weights, mu, &out.copies);
    if (score) {
      // Every rank of a replica scores (the pipeline runs stage by stage); all get the results.
      auto s = eval::score_loglikelihood(*t.model(), scoring_requests(), 2);
      if (w.rank() == 0) out.scores = std::move(s);
    }
  });
  return out;
}

void expect_equivalent(const Outcome& ref, const Outcome& got, double loss_tol = 2e-5, double weight_tol = 2e-4) {
  ASSERT_EQ(ref.losses.size(), got.losses.size());
  for (std::size_t i = 0; i < ref.losses.size(); ++i)
    EXPECT_NEAR(got.losses[i], ref.losses[i], loss_tol * std::fabs(ref.losses[i])) << "step " << i + 1;
  double worst = 0.0;
  std::string worst_name;
  for (const auto& [name, w] : got.weights) {
    auto it = ref.weights.find(name);
    ASSERT_NE(it, ref.weights.end()) << name;
    ASSERT_EQ(it->second.size(), w.size()) << name;
    for (std::size_t i = 0; i < w.size(); ++i) {
      ASSERT_FALSE(std::isnan(w[i])) << name << " element " << i << " was never written";
      const double d = std::fabs(static_cast<double>(w[i]) - it->second[i]);
      if (d > worst) {
        worst = d;
        worst_name = name;
      }
    }
  }
  EXPECT_EQ(ref.weights.size(), got.weights.size());
  EXPECT_LT(worst, weight_tol) << "largest weight difference in " << worst_name;
  // A stage's copy of a tied table got the same updates as the table.
  for (const auto& [source, copy] : got.copies) {
    auto it = got.weights.find(source);
    ASSERT_NE(it, got.weights.end()) << "a copy of " << source << ", which no stage holds";
    ASSERT_EQ(it->second.size(), copy.size()) << source;
    for (std::size_t i = 0; i < copy.size(); ++i)
      if (!std::isnan(copy[i])) ASSERT_EQ(copy[i], it->second[i]) << "copy of " << source << " element " << i;
  }
}

class T5ParallelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("t5_parallel");
    reference_ = new Outcome(run(Layout{}, dir_->path() / "reference", kSteps));
    relative_ = new Outcome(run(Layout{.relative = true}, dir_->path() / "reference_rel", kSteps));
  }
  static void TearDownTestSuite() {
    delete relative_;
    delete reference_;
    delete dir_;
  }
  static constexpr int kSteps = 4;
  static TempDir* dir_;
  static Outcome* reference_;
  static Outcome* relative_;
};
TempDir* T5ParallelTest::dir_ = nullptr;
Outcome* T5ParallelTest::reference_ = nullptr;
Outcome* T5ParallelTest::relative_ = nullptr;

TEST_F(T5ParallelTest, ReferenceTrains) {
  ASSERT_EQ(reference_->losses.size(), static_cast<std::size_t>(kSteps));
  EXPECT_GT(reference_->losses.front(), 3.0);  // ~ln(64) at the start
  for (double l : reference_->losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_NE(reference_->losses.front(), relative_->losses.front());
}

TEST_F(T5ParallelTest, TensorParallel2) {
  expect_equivalent(*reference_, run({.tp = 2}, dir_->path() / "tp2", kSteps));
}

TEST_F(T5ParallelTest, TensorParallel2RelativePositions) {
  expect_equivalent(*relative_, run({.tp = 2, .relative = true}, dir_->path() / "tp2rel", kSteps));
}

TEST_F(T5ParallelTest, DataParallel2) { expect_equivalent(*reference_, run({.dp = 2}, dir_->path() / "dp2", kSteps)); }

TEST_F(T5ParallelTest, DataParallel2DistributedOptimizer) {
  expect_equivalent(*reference_, run({.dp = 2, .distributed_optimizer = true}, dir_->path() / "dp2do", kSteps));
}

TEST_F(T5ParallelTest, Tp2Dp2WithActivationCheckpointing) {
  expect_equivalent(*relative_,
                    run({.tp = 2, .dp = 2, .recompute = true, .relative = true}, dir_->path() / "tp2dp2ac", kSteps));
}

TEST_F(T5ParallelTest, PipelineParallel2SplitRank1) {
  const Outcome got = run({.pp = 2}, dir_->path() / "pp2", kSteps);
  EXPECT_FALSE(got.copies.empty());  // stage 1's decoder tables copy stage 0's
  expect_equivalent(*reference_, got);
}

TEST_F(T5ParallelTest, PipelineParallel2ScoresLikeOneRank) {
  // Log-likelihood scoring (bignlp-evaluate's path) of the trained model, pipelined and not.
  const Outcome one = run({}, dir_->path() / "score1", 2, false, false, true);
  const Outcome two = run({.pp = 2}, dir_->path() / "score2", 2, false, false, true);
  ASSERT_EQ(one.scores.size(), scoring_requests().size());
  ASSERT_EQ(two.scores.size(), one.scores.size());
  for (std::size_t i = 0; i < one.scores.size(); ++i) {
    EXPECT_LT(one.scores[i].logprob, 0.0);
    EXPECT_NEAR(two.scores[i].logprob, one.scores[i].logprob, 1e-4 * std::fabs(one.scores[i].logprob)) << i;
    EXPECT_EQ(two.scores[i].is_greedy, one.scores[i].is_greedy) << i;
  }
}

TEST_F(T5ParallelTest, PipelineParallel3SplitRank1RelativePositions) {
  // Decoder stages 1 and 2: the encoder output passes through stage 1, the head copies the table.
  expect_equivalent(*relative_, run({.pp = 3, .split = 1, .relative = true}, dir_->path() / "pp3rel", kSteps));
}

TEST_F(T5ParallelTest, PipelineParallel4SplitRank2) {
  expect_equivalent(*reference_, run({.pp = 4, .split = 2}, dir_->path() / "pp4", kSteps));
}

TEST_F(T5ParallelTest, Pp2Tp2RelativePositions) {
  expect_equivalent(*relative_, run({.tp = 2, .pp = 2, .relative = true}, dir_->path() / "pp2tp2rel", kSteps));
}

TEST_F(T5ParallelTest, Pp2Dp2DistributedOptimizerWithActivationCheckpointing) {
  expect_equivalent(*reference_, run({.pp = 2, .dp = 2, .distributed_optimizer = true, .recompute = true},
                                     dir_->path() / "pp2dp2", kSteps));
}

TEST_F(T5ParallelTest, SequenceParallelTp2) {
  expect_equivalent(*reference_, run({.tp = 2, .sp = true}, dir_->path() / "sp", kSteps));
}

TEST_F(T5ParallelTest, SequenceParallelTp2RelativePositionsWithActivationCheckpointing) {
  expect_equivalent(*relative_, run({.tp = 2, .sp = true, .recompute = true, .relative = true}, dir_->path() / "sprel",
                                    kSteps));
}

TEST_F(T5ParallelTest, SequenceParallelTp2Pp2) {
  expect_equivalent(*reference_, run({.tp = 2, .pp = 2, .sp = true}, dir_->path() / "sppp", kSteps));
}

// bf16 and fp16 (dynamic loss scaling) training track the fp32 losses. Tolerances (documented in
// docs/engine.md §6a): every step within 0.5% (bf16) and 0.05% (fp16, initial loss scale 2^12) of fp32's loss.
TEST_F(T5ParallelTest, Bf16AndFp16TrainingTrackFp32) {
  for (const auto& [precision, tol] : std::vector<std::pair<model::Precision, double>>{
           {model::Precision::kBf16, 0.005}, {model::Precision::kFp16, 0.0005}}) {
    const std::string name = precision == model::Precision::kBf16 ? "bf16" : "fp16";
    const Outcome got = run({.precision = precision}, dir_->path() / name, kSteps);
    ASSERT_EQ(got.losses.size(), reference_->losses.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < got.losses.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got.losses[i])) << name << " step " << i + 1;
      worst = std::max(worst, std::fabs(got.losses[i] - reference_->losses[i]) / reference_->losses[i]);
      EXPECT_NEAR(got.losses[i], reference_->losses[i], tol * reference_->losses[i])
          << name << " step " << i + 1;
    }
    // The low-precision run is a different computation: not bit-equal to fp32.
    EXPECT_GT(worst, 0.0) << name;
    std::printf("T5 %s: largest relative loss difference to fp32 over %d steps: %.2e\n", name.c_str(), kSteps, worst);
  }
}

TEST_F(T5ParallelTest, BadSplitRanksAreRefusedByKey) {
  for (const auto& [layout, key] : std::vector<std::pair<Layout, std::string>>{
           {Layout{.pp = 2, .split = 0}, "model.pipeline_model_parallel_split_rank"},
           {Layout{.pp = 2, .split = 2}, "model.pipeline_model_parallel_split_rank"},
           {Layout{.pp = 4, .split = 1}, "model.decoder.num_layers"},
           {Layout{.pp = 4, .split = 3}, "model.encoder.num_layers"}}) {
    try {
      run(layout, dir_->path() / "refused", 1);
      FAIL() << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

/// Every tensor of a one-shard checkpoint's model.safetensors.
Tensors shard_tensors(const fs::path& ckpt) {
  SafetensorsReader r(ckpt / checkpoint::checkpoint_shard_name(0, 0) / "model.safetensors");
  Tensors out;
  for (const auto& e : r.entries()) {
    const TensorView v = r.view(e.name);
    out[e.name].assign(v.data<float>(), v.data<float>() + v.numel());
  }
  return out;
}

TEST_F(T5ParallelTest, CheckpointsResumeAndReshardTp2ToTp1AndBack) {
  // Two steps on TP 2 with checkpoints, resharded to TP 1: its weights are the TP 2 run's.
  const fs::path results = dir_->path() / "ckpt";
  const Outcome first = run({.tp = 2}, results, 2, false, true);
  const auto ckpt = checkpoint::find_latest_checkpoint(results / "checkpoints");
  ASSERT_TRUE(ckpt);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*ckpt).family, "t5");
  const Logger quiet = Logger::capturing(LogLevel::kWarn);
  checkpoint::reshard_checkpoint(*ckpt, dir_->path() / "one", 1, 1, quiet);
  const Tensors one = shard_tensors(dir_->path() / "one");
  ASSERT_EQ(one.size(), first.weights.size());
  for (const auto& [name, w] : first.weights) {
    ASSERT_TRUE(one.count(name)) << name;
    EXPECT_EQ(one.at(name), w) << name;
  }
  // TP 1 -> TP 2 -> TP 1 is exact.
  checkpoint::reshard_checkpoint(dir_->path() / "one", dir_->path() / "two", 2, 1, quiet);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(dir_->path() / "two").tp_size, 2);
  checkpoint::reshard_checkpoint(dir_->path() / "two", dir_->path() / "one_again", 1, 1, quiet);
  EXPECT_EQ(shard_tensors(dir_->path() / "one_again"), one);
  // Resuming the TP 2 run for the last two steps gives the uninterrupted run.
  const Outcome second = run({.tp = 2}, results, kSteps, true, true);
  ASSERT_EQ(second.losses.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(second.losses[i], reference_->losses[2 + i], 2e-5 * reference_->losses[2 + i]);
  Outcome combined = second;
  combined.losses = reference_->losses;
  expect_equivalent(*reference_, combined);
}

TEST_F(T5ParallelTest, Pp2CheckpointsResumeAndReshardToPp1) {
  const fs::path results = dir_->path() / "ckpt_pp";
  const Outcome first = run({.pp = 2}, results, 2, false, true);
  const auto ckpt = checkpoint::find_latest_checkpoint(results / "checkpoints");
  ASSERT_TRUE(ckpt);
  EXPECT_EQ(checkpoint::read_checkpoint_metadata(*ckpt).pp_size, 2);
  // Stage 1 holds the decoder's copies of the tied tables, under NeMo's names.
  {
    SafetensorsReader stage1(*ckpt / checkpoint::checkpoint_shard_name(0, 1) / "model.safetensors");
    EXPECT_NE(stage1.find("enc_dec_model.decoder_embedding.word_embeddings.weight"), nullptr);
    EXPECT_EQ(stage1.find("enc_dec_model.encoder_embedding.word_embeddings.weight"), nullptr);
  }
  const Logger quiet = Logger::capturing(LogLevel::kWarn);
  checkpoint::reshard_checkpoint(*ckpt, dir_->path() / "pp_one", 1, 1, quiet);
  const Tensors one = shard_tensors(dir_->path() / "pp_one");
  ASSERT_EQ(one.size(), first.weights.size());
  for (const auto& [name, w] : first.weights) {
    ASSERT_TRUE(one.count(name)) << name;
    EXPECT_EQ(one.at(name), w) << name;
  }
  // PP 1 -> PP 2 (split rank 1) -> PP 1 is exact.
  checkpoint::reshard_checkpoint(dir_->path() / "pp_one", dir_->path() / "pp_two", 1, 2, quiet);
  const auto two_meta = checkpoint::read_checkpoint_metadata(dir_->path() / "pp_two");
  EXPECT_EQ(two_meta.pp_size, 2);
  EXPECT_EQ(two_meta.model.at("pipeline_model_parallel_split_rank").get<int>(), 1);
  checkpoint::reshard_checkpoint(dir_->path() / "pp_two", dir_->path() / "pp_one_again", 1, 1, quiet);
  EXPECT_EQ(shard_tensors(dir_->path() / "pp_one_again"), one);
  // Resuming the PP 2 run for the last two steps gives the uninterrupted run.
  const Outcome second = run({.pp = 2}, results, kSteps, true, true);
  ASSERT_EQ(second.losses.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(second.losses[i], reference_->losses[2 + i], 2e-5 * reference_->losses[2 + i]);
  Outcome combined = second;
  combined.losses = reference_->losses;
  expect_equivalent(*reference_, combined);
}

}  // namespace
}  // namespace bignlp::train
