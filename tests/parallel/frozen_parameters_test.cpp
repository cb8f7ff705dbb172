// Trainable and frozen parameters: training with a frozen subset leaves the frozen weights bit for
// bit as they were while the others learn, on one rank and on two data-parallel thread ranks with
// the distributed optimizer; frozen parameters cost no gradient, master or optimizer memory (exact
// byte counts); checkpoints save their weights without moments and round-trip, also resharded.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <mutex>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/reshard.h"
#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/gpt.h"
#include "bignlp/ops/ops.h"
#include "bignlp/tensor/safetensors.h"
#include "bignlp/train/optimizer.h"

namespace bignlp::train {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

model::GptConfig small_gpt(model::Precision precision) {
  model::GptConfig c;
  c.vocab_size = 250;
  c.make_vocab_size_divisible_by = 128;
  c.seq_length = 16;
  c.num_layers = 2;
  c.hidden_size = 64;
  c.ffn_hidden_size = 256;
  c.num_attention_heads = 4;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  c.precision = precision;
  return c;
}

/// Prompt-learning style: the embeddings and layer 0 are frozen; layer 1 and the final LayerNorm learn.
bool trainable(const model::Parameter& p) {
  return p.name.find("layers.1.") != std::string::npos || p.name.find("final_layernorm") != std::string::npos;
}

std::vector<char> bytes_of(const TensorView& t) {
  std::vector<char> out(t.nbytes());
  ops::copy(ops::OpContext::cpu(), t, TensorView(out.data(), t.dtype(), t.shape()));
  return out;
}

std::vector<float> to_host(const TensorView& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  ops::copy(ops::OpContext::cpu(), t, TensorView(out.data(), DType::kF32, t.shape()));
  return out;
}

/// A (2, 16) batch that differs per `seed`.
struct Batch {
  std::vector<std::int32_t> tokens, labels;
  model::Batch batch;
  explicit Batch(int seed) {
    for (int i = 0; i < 32; ++i) {
      tokens.push_back((seed * 37 + i * 11) % 250);
      labels.push_back((seed * 37 + (i + 1) * 11) % 250);
    }
    batch.tokens = TensorView(tokens.data(), DType::kI32, Shape{2, 16});
    batch.labels = TensorView(labels.data(), DType::kI32, Shape{2, 16});
  }
};

OptimizerConfig adam(const std::string& name) {
  OptimizerConfig o;
  o.name = name;
  o.lr = 1e-2;
  o.beta2 = 0.95;
  o.weight_decay = 0.1;
  return o;
}

/// One rank: model (with or without the frozen subset), buckets, optimizer.
struct Rank {
  CpuAllocator alloc;
  ops::OpContext ctx;
  comm::ParallelGroups groups;
  parallel::ParallelContext parallel;
  std::unique_ptr<model::GptModel> model;
  std::unique_ptr<parallel::GradBuckets> buckets;
  std::unique_ptr<AdamOptimizer> optimizer;

  Rank(comm::Communicator* world, model::Precision precision, bool freeze, std::int64_t bucket_numel = 3000)
      : ctx(ops::OpContext::cpu(1)) {
    ctx.allocator = &alloc;
    const bool distributed = world != nullptr;
    if (distributed) {
      groups = comm::ParallelGroups::create(*world, comm::ProcessGrid(world->size(), world->rank(), 1, 1));
      parallel::ParallelOptions options;
      options.distributed_optimizer_bucket_numel = bucket_numel;
      parallel = parallel::ParallelContext::from(groups, options);
    }
    model = std::make_unique<model::GptModel>(small_gpt(precision), ctx, parallel,
                                              freeze ? model::ParameterPredicate(trainable) : model::ParameterPredicate());
    model->initialize(5);
    if (distributed)
      buckets = std::make_unique<parallel::GradBuckets>(parallel.dp, ctx, model->parameters().trainable_ranges(),
                                                        bucket_numel, parallel::GradBuckets::Mode::kReduceScatter);
    optimizer = std::make_unique<AdamOptimizer>(model->parameters(), adam(distributed ? "distributed_fused_adam" : "fused_adam"),
                                                ctx, parallel, buckets.get());
  }

  /// One optimizer step on this rank's batch (data-parallel ranks see different batches).
  OptimizerStepResult step(int step, int rank = 0) {
    auto& store = model->parameters();
    store.zero_grad(ctx);
    if (buckets) buckets->set_buffer(store.flat_grad());
    const Batch b(step * 2 + rank);
    model->train_micro_batch(b.batch, model::DropoutRng{}, 1.0f);
    if (buckets) buckets->finish();
    return optimizer->step(1e-2, 1.0, 1.0);
  }
};

using Snapshot = std::map<std::string, std::vector<char>>;
Snapshot snapshot(model::ParameterStore& store) {
  Snapshot s;
  for (const auto& p : store.params()) s[p.name] = bytes_of(p.value);
  return s;
}

/// Frozen parameters are bit-identical to `before`, every trainable one changed.
void expect_only_trainable_changed(model::ParameterStore& store, const Snapshot& before) {
  int frozen = 0, trained = 0;
  for (const auto& p : store.params()) {
    EXPECT_EQ(p.trainable, trainable(p)) << p.name;
    if (p.trainable) {
      ++trained;
      EXPECT_NE(bytes_of(p.value), before.at(p.name)) << p.name << " did not learn";
    } else {
      ++frozen;
      EXPECT_EQ(bytes_of(p.value), before.at(p.name)) << p.name << " changed although frozen";
    }
  }
  EXPECT_EQ(frozen, 2 + 12);  // word + position embeddings, layer 0
  EXPECT_EQ(trained, 12 + 2);  // layer 1, final LayerNorm
}

TEST(FrozenParameters, OneRankTrainsOnlyTheTrainableSubsetAndAllocatesNothingForTheFrozenOne) {
  for (const model::Precision precision : {model::Precision::kFp32, model::Precision::kBf16}) {
    SCOPED_TRACE(model::precision_name(precision));
    Rank r(nullptr, precision, /*freeze=*/true);
    auto& store = r.model->parameters();
    std::int64_t trainable_numel = 0, frozen_largest = 0;
    for (const auto& p : store.params()) {
      if (trainable(p)) trainable_numel += p.numel();
      else frozen_largest = std::max(frozen_largest, p.numel());
    }
    ASSERT_EQ(store.trainable_numel(), trainable_numel);
    ASSERT_LT(trainable_numel, store.numel() / 2);
    const bool mixed = precision != model::Precision::kFp32;
    // Exact memory: gradients and moments of the trainable elements only, master weights of the
    // trainable elements only (mixed precision), one gradient scratch of the largest frozen tensor.
    EXPECT_EQ(store.flat_grad().nbytes(), static_cast<std::size_t>(trainable_numel) * 4);
    EXPECT_EQ(r.optimizer->exp_avg().numel(), trainable_numel);
    EXPECT_EQ(r.optimizer->state_bytes(), static_cast<std::size_t>(trainable_numel) * (mixed ? 12 : 8));
    EXPECT_EQ(store.bytes(), static_cast<std::size_t>(store.numel()) * (mixed ? 2 : 4) +
                                 static_cast<std::size_t>(trainable_numel) * (mixed ? 8 : 4) +
                                 static_cast<std::size_t>(frozen_largest) * 4);
    const Snapshot before = snapshot(store);
    for (int step = 0; step < 4; ++step) {
      const OptimizerStepResult res = r.step(step);
      ASSERT_FALSE(res.skipped);
      // The norm counts the trainable gradients only (the flat buffer holds nothing else).
      double sq = 0.0;
      for (float g : to_host(store.flat_grad())) sq += static_cast<double>(g) * g;
      EXPECT_NEAR(res.grad_norm, std::sqrt(sq), 1e-4 * std::sqrt(sq));
    }
    expect_only_trainable_changed(store, before);
  }
}

TEST(FrozenParameters, CheckpointsKeepFrozenWeightsWithoutMomentsAndRoundTrip) {
  TempDir dir("frozen-ckpt");
  Rank r(nullptr, model::Precision::kFp32, /*freeze=*/true);
  for (int step = 0; step < 3; ++step) r.step(step);
  checkpoint::CheckpointState st;
  st.model = r.model->config_json();
  st.optimizer_steps = r.optimizer->steps();
  const fs::path ckpt = dir.path() / "frozen";
  checkpoint::save_checkpoint(ckpt, st, r.model->parameters(), r.optimizer.get(), r.ctx);
  {
    const SafetensorsReader weights(ckpt / checkpoint::checkpoint_shard_name(0, 0) / "model.safetensors");
    const SafetensorsReader moments(ckpt / checkpoint::checkpoint_shard_name(0, 0) / "optimizer.safetensors");
    for (const auto& p : r.model->parameters().params()) {
      ASSERT_NE(weights.find(p.name), nullptr) << p.name;
      EXPECT_EQ(bytes_of(weights.view(p.name)), bytes_of(p.value)) << p.name;
      EXPECT_EQ(moments.find("exp_avg." + p.name) != nullptr, p.trainable) << p.name;
      EXPECT_EQ(moments.find("exp_avg_sq." + p.name) != nullptr, p.trainable) << p.name;
    }
  }
  // Loads into a store with the same subset frozen: weights, moments and step count.
  Rank back(nullptr, model::Precision::kFp32, /*freeze=*/true);
  checkpoint::load_checkpoint(ckpt, back.model->parameters(), back.optimizer.get(), back.ctx);
  EXPECT_EQ(snapshot(back.model->parameters()), snapshot(r.model->parameters()));
  EXPECT_EQ(to_host(back.optimizer->exp_avg()), to_host(r.optimizer->exp_avg()));
  EXPECT_EQ(to_host(back.optimizer->exp_avg_sq()), to_host(r.optimizer->exp_avg_sq()));
  EXPECT_EQ(back.optimizer->steps(), 3);
  // Training continues identically.
  r.step(3);
  back.step(3);
  EXPECT_EQ(snapshot(back.model->parameters()), snapshot(r.model->parameters()));
  // A parameter trainable now but frozen when saved has no moments: an error naming it.
  Rank all(nullptr, model::Precision::kFp32, /*freeze=*/false);
  try {
    checkpoint::load_checkpoint(ckpt, all.model->parameters(), all.optimizer.get(), all.ctx);
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("model.language_model.embedding.word_embeddings.weight' is missing"),
              std::string::npos)
        << e.what();
  }
  // The other way round works: a checkpoint with moments for every parameter loads into a store
  // where some are frozen now (their moments are not needed).
  const fs::path full = dir.path() / "all";
  checkpoint::save_checkpoint(full, st, all.model->parameters(), all.optimizer.get(), all.ctx);
  Rank later(nullptr, model::Precision::kFp32, /*freeze=*/true);
  checkpoint::load_checkpoint(full, later.model->parameters(), later.optimizer.get(), later.ctx);
  EXPECT_EQ(snapshot(later.model->parameters()), snapshot(all.model->parameters()));
  // Resharding keeps frozen parameters without moments, and comes back to the same bytes.
  const Logger log = Logger::capturing(LogLevel::kWarn);
  checkpoint::reshard_checkpoint(ckpt, dir.path() / "tp2", 2, 2, log);
  checkpoint::reshard_checkpoint(dir.path() / "tp2", dir.path() / "tp1", 1, 1, log);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    const SafetensorsReader a(ckpt / checkpoint::checkpoint_shard_name(0, 0) / file);
    const SafetensorsReader b(dir.path() / "tp1" / checkpoint::checkpoint_shard_name(0, 0) / file);
    ASSERT_EQ(a.entries().size(), b.entries().size()) << file;
    for (const auto& e : a.entries()) {
      ASSERT_NE(b.find(e.name), nullptr) << e.name;
      EXPECT_EQ(bytes_of(a.view(e.name)), bytes_of(b.view(e.name))) << e.name;
    }
  }
}

TEST(FrozenParameters, DistributedOptimizerOnTwoRanksShardsOnlyTrainableElements) {
  TempDir dir("frozen-dp");
  const fs::path ckpt = dir.path() / "ckpt";
  std::mutex mu;
  std::int64_t owned_total = 0;
  std::vector<Snapshot> finals(2);
  std::vector<std::vector<float>> moments(2);
  {
    comm::LocalWorld world(2, 30s);
    world.run([&](comm::Communicator& w) {
      Rank r(&w, model::Precision::kBf16, /*freeze=*/true);
      auto& store = r.model->parameters();
      std::int64_t owned = 0;
      for (const auto& range : r.optimizer->owned_ranges()) {
        EXPECT_LE(range.end, store.trainable_numel());
        owned += range.size();
      }
      // Moments and master weights of this rank's shards of the trainable elements, nothing else.
      EXPECT_EQ(r.optimizer->exp_avg().numel(), owned);
      EXPECT_EQ(store.flat_master().numel(), owned);
      EXPECT_EQ(r.optimizer->state_bytes(), static_cast<std::size_t>(owned) * 12);
      EXPECT_EQ(store.flat_grad().nbytes(), static_cast<std::size_t>(store.trainable_numel()) * 4);
      const Snapshot before = snapshot(store);
      for (int step = 0; step < 4; ++step) ASSERT_FALSE(r.step(step, w.rank()).skipped);
      expect_only_trainable_changed(store, before);
      checkpoint::CheckpointState st;
      st.model = r.model->config_json();
      st.optimizer_steps = r.optimizer->steps();
      checkpoint::save_checkpoint(ckpt, st, store, r.optimizer.get(), r.ctx, r.parallel);
      std::vector<float> master, m, v;
      r.optimizer->gather_state(true, master, m, v);
      std::lock_guard lock(mu);
      owned_total += owned;
      finals[static_cast<std::size_t>(w.rank())] = snapshot(store);
      moments[static_cast<std::size_t>(w.rank())] = m;
    });
  }
  // The shards partition the trainable elements exactly.
  Rank one(nullptr, model::Precision::kBf16, /*freeze=*/true);
  EXPECT_EQ(owned_total, one.model->parameters().trainable_numel());
  EXPECT_EQ(finals[0], finals[1]);  // every rank holds the same complete weights
  EXPECT_EQ(moments[0], moments[1]);
  // The checkpoint resumes on two ranks (each keeps its shards) and on one rank.
  {
    comm::LocalWorld world(2, 30s);
    world.run([&](comm::Communicator& w) {
      Rank r(&w, model::Precision::kBf16, /*freeze=*/true);
      checkpoint::load_checkpoint(ckpt, r.model->parameters(), r.optimizer.get(), r.ctx, r.parallel);
      EXPECT_EQ(snapshot(r.model->parameters()), finals[0]);
      std::vector<float> master, m, v;
      r.optimizer->gather_state(true, master, m, v);
      EXPECT_EQ(m, moments[0]);
    });
  }
  checkpoint::load_checkpoint(ckpt, one.model->parameters(), one.optimizer.get(), one.ctx);
  EXPECT_EQ(snapshot(one.model->parameters()), finals[0]);
  EXPECT_EQ(to_host(one.optimizer->exp_avg()), moments[0]);
}

}  // namespace
}  // namespace bignlp::train
