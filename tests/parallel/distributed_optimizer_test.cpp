// The distributed optimizer on thread ranks: per-rank optimizer state shrinks to ~1/DP (allocator
// figures), the multi-tensor step equals the per-tensor ops bit for bit, the overflow decision is
// the same on every rank (also when only one rank's shard, or only a duplicate parameter, holds
// the non-finite gradient), and a checkpoint missing a moment fails loading with its name.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <cstdio>
#include <mutex>
#include <random>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/checkpoint.h"
#include "bignlp/checkpoint/integrity.h"
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
using checkpoint::CheckpointState;
using checkpoint::checkpoint_shard_name;
using checkpoint::load_checkpoint;
using checkpoint::save_checkpoint;
using namespace std::chrono_literals;

model::GptConfig small_gpt(model::Precision precision, int tp = 1) {
  model::GptConfig c;
  c.vocab_size = 250;
  c.make_vocab_size_divisible_by = 128;
  c.seq_length = 16;
  c.num_layers = 2;
  c.hidden_size = 64;
  c.ffn_hidden_size = 256;
  c.num_attention_heads = 4;
  c.init_method_std = 0.02f;
  c.precision = precision;
  c.tensor_model_parallel_size = tp;
  return c;
}

OptimizerConfig adam_config(const std::string& name) {
  OptimizerConfig o;
  o.name = name;
  o.lr = 1e-3;
  o.beta2 = 0.95;
  o.weight_decay = 0.1;
  return o;
}

/// One rank's model, gradient buckets and optimizer over a DP (and TP) grid of thread ranks.
struct Rank {
  CpuAllocator alloc;
  ops::OpContext ctx;
  comm::ParallelGroups groups;
  parallel::ParallelContext parallel;
  std::unique_ptr<model::GptModel> model;
  std::unique_ptr<parallel::GradBuckets> buckets;
  std::unique_ptr<AdamOptimizer> optimizer;
  std::size_t model_bytes = 0;      // allocator bytes in use after building the model
  std::size_t optimizer_bytes = 0;  // allocator bytes the optimizer added

  Rank(comm::Communicator& world, int tp, model::Precision precision, bool distributed, std::int64_t bucket_numel,
       std::uint64_t seed = 3)
      : ctx(ops::OpContext::cpu(1)),
        groups(comm::ParallelGroups::create(world, comm::ProcessGrid(world.size(), world.rank(), tp, 1))) {
    ctx.allocator = &alloc;
    parallel::ParallelOptions options;
    if (distributed) options.distributed_optimizer_bucket_numel = bucket_numel;
    parallel = parallel::ParallelContext::from(groups, options);
    model = std::make_unique<model::GptModel>(small_gpt(precision, tp), ctx, parallel);
    model_bytes = alloc.stats().in_use;
    model->initialize(seed);
    std::vector<parallel::FlatRange> ranges;
    for (const auto& p : model->parameters().params()) ranges.push_back({p.offset, p.offset + p.numel()});
    const std::size_t before = alloc.stats().in_use;
    if (parallel.dp != nullptr)
      buckets = std::make_unique<parallel::GradBuckets>(
          parallel.dp, ctx, ranges, bucket_numel,
          distributed ? parallel::GradBuckets::Mode::kReduceScatter : parallel::GradBuckets::Mode::kAllReduce);
    optimizer = std::make_unique<AdamOptimizer>(model->parameters(), adam_config(distributed ? "distributed_fused_adam" : "fused_adam"),
                                                ctx, parallel, distributed ? buckets.get() : nullptr);
    optimizer_bytes = alloc.stats().in_use - before;
  }

  /// Gradients as after the data-parallel reduction: element i of parameter p is a function of
  /// (p's name, i, step), the same on every DP rank.
  void set_grads(int step) {
    for (auto& p : model->parameters().params()) {
      std::mt19937 rng(static_cast<std::uint32_t>(model::fnv1a64(p.name) + static_cast<std::uint64_t>(step)));
      std::normal_distribution<float> n(0.0f, 0.05f);
      std::vector<float> g(static_cast<std::size_t>(p.numel()));
      for (auto& x : g) x = n(rng);
      ops::copy(ctx, TensorView(g.data(), DType::kF32, p.shape), p.grad);
    }
  }
};

std::vector<float> to_host(const TensorView& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  ops::copy(ops::OpContext::cpu(), t, TensorView(out.data(), DType::kF32, t.shape()));
  return out;
}

struct MemoryFigures {
  std::size_t state = 0;            // AdamOptimizer::state_bytes (master shard + moments)
  std::size_t measured_state = 0;   // the same from the allocator: optimizer allocations + the store's master
  std::size_t store = 0;            // ParameterStore::bytes
  std::size_t measured_total = 0;   // allocator bytes in use for model + optimizer
  std::int64_t numel = 0;
  int buckets = 0;
};

std::vector<MemoryFigures> measure(int dp, model::Precision precision, std::int64_t bucket_numel) {
  std::vector<MemoryFigures> out(static_cast<std::size_t>(dp));
  comm::LocalWorld world(dp, 30s);
  world.run([&](comm::Communicator& w) {
    Rank r(w, 1, precision, /*distributed=*/true, bucket_numel);
    MemoryFigures& f = out[static_cast<std::size_t>(w.rank())];
    const auto& store = r.model->parameters();
    f.state = r.optimizer->state_bytes();
    const std::size_t master = store.compute_dtype() != DType::kF32 ? store.flat_master().nbytes() : 0;
    f.measured_state = r.optimizer_bytes + master;
    f.store = store.bytes();
    f.measured_total = r.model_bytes + r.optimizer_bytes;
    f.numel = store.numel();
    f.buckets = static_cast<int>(parallel::GradBuckets::layout(
                                     [&] {
                                       std::vector<parallel::FlatRange> v;
                                       for (const auto& p : store.params()) v.push_back({p.offset, p.offset + p.numel()});
                                       return v;
                                     }(),
                                     bucket_numel)
                                     .size());
  });
  return out;
}

// Optimizer state per rank ~ 1/DP: fp32 master weights (16-bit runs) and both moments exist only
// for the rank's shards; the compute copy and the fp32 gradients stay whole (6 + 12/d bytes per
// parameter under bf16, 8 + 8/d at fp32).
TEST(DistributedOptimizer, OptimizerStatePerRankShrinksWithTheDataParallelSize) {
  const std::int64_t bucket = 40000;
  for (const auto precision : {model::Precision::kBf16, model::Precision::kFp32}) {
    const std::string pname = model::precision_name(precision);
    SCOPED_TRACE(pname);
    const MemoryFigures one = measure(1, precision, bucket)[0];
    const std::int64_t n = one.numel;
    const std::size_t state_per_param = precision == model::Precision::kFp32 ? 8 : 12;
    const std::size_t compute_per_param = precision == model::Precision::kFp32 ? 4 : 2;
    EXPECT_EQ(one.state, state_per_param * static_cast<std::size_t>(n));
    std::printf("%-5s params %lld, %d buckets | DP 1: optimizer state %zu B, model + optimizer %zu B\n", pname.c_str(),
                static_cast<long long>(n), one.buckets, one.state, one.measured_total);
    for (int dp : {2, 4}) {
      const std::vector<MemoryFigures> ranks = measure(dp, precision, bucket);
      std::size_t sum = 0, largest = 0, largest_total = 0;
      for (const MemoryFigures& f : ranks) {
        // The allocator agrees with the optimizer's own account (the 8-byte norm scratch and
        // 64-byte alignment aside).
        EXPECT_GE(f.measured_state, f.state);
        EXPECT_LE(f.measured_state, f.state + 4 * 64);
        // The whole per-rank footprint: compute copy and gradient whole, master (16-bit) and
        // moments sharded.
        const std::size_t master = precision == model::Precision::kFp32 ? 0 : f.state / 3;
        EXPECT_EQ(f.store, (compute_per_param + 4) * static_cast<std::size_t>(n) + master);
        EXPECT_GE(f.measured_total, f.store + (f.state - master));
        EXPECT_LE(f.measured_total, f.store + (f.state - master) + 16 * 64);
        sum += f.state;
        largest = std::max(largest, f.state);
        largest_total = std::max(largest_total, f.measured_total);
      }
      // The shards partition the state; no rank holds more than its share plus a padding element
      // per bucket.
      EXPECT_EQ(sum, one.state);
      EXPECT_LE(largest, one.state / static_cast<std::size_t>(dp) + state_per_param * static_cast<std::size_t>(one.buckets));
      std::printf("%-5s DP %d: optimizer state per rank %zu B (%.3f of DP 1), model + optimizer %zu B (%.3f of DP 1)\n",
                  pname.c_str(), dp, largest, static_cast<double>(largest) / static_cast<double>(one.state),
                  largest_total, static_cast<double>(largest_total) / static_cast<double>(one.measured_total));
      ::testing::Test::RecordProperty(fmt::format("{}_dp{}_state_ratio", pname, dp),
                                      std::to_string(static_cast<double>(largest) / static_cast<double>(one.state)));
    }
  }
}

/// The step as separate per-tensor ops (ops::sum_squares, ops::adamw_step), the way it was written
/// before the multi-tensor ops: parameter by parameter (fragment by fragment when sharded).
OptimizerStepResult reference_step(Rank& r, std::vector<float>& m, std::vector<float>& v, std::int64_t step, double lr) {
  auto& store = r.model->parameters();
  const auto& owned = r.optimizer->owned_ranges();
  const bool sharded = r.optimizer->sharded();
  float sq = 0.0f;
  const TensorView sq_view(&sq, DType::kF32, Shape{1});
  if (!sharded && r.parallel.model_parallel == nullptr) {
    ops::sum_squares(r.ctx, store.flat_grad(), sq_view);
  } else {
    for (const auto& p : store.params()) {
      if (p.shared || (!p.tensor_parallel() && !r.parallel.counts_replicated_params())) continue;
      for (const auto& range : owned) {
        const auto part = range.intersect({p.offset, p.offset + p.numel()});
        if (part.size() > 0) ops::sum_squares(r.ctx, store.flat_grad().slice(0, part.begin, part.size()), sq_view, true);
      }
    }
    if (sharded) r.parallel.dp->all_reduce(sq_view, comm::ReduceOp::kSum);
    if (r.parallel.model_parallel != nullptr) r.parallel.model_parallel->all_reduce(sq_view, comm::ReduceOp::kSum);
  }
  OptimizerStepResult res;
  res.grad_norm = std::sqrt(static_cast<double>(sq));
  const double coeff = 1.0 / (res.grad_norm + 1e-6);
  if (coeff < 1.0) res.clip_coeff = coeff;
  ops::AdamWParams a;
  a.lr = static_cast<float>(lr);
  a.beta1 = 0.9f;
  a.beta2 = 0.95f;
  a.eps = 1e-8f;
  a.step = step;
  a.grad_scale = static_cast<float>(res.clip_coeff);
  const bool separate = store.compute_dtype() != DType::kF32;
  std::int64_t mo = 0;
  for (const auto& range : owned) {
    for (auto& p : store.params()) {
      const auto part = range.intersect({p.offset, p.offset + p.numel()});
      if (part.size() == 0) continue;
      a.weight_decay = p.weight_decay ? 0.1f : 0.0f;
      const std::int64_t at = mo + part.begin - range.begin;
      ops::adamw_step(r.ctx, store.master_range(part), store.flat_grad().slice(0, part.begin, part.size()),
                      TensorView(m.data() + at, DType::kF32, Shape{part.size()}),
                      TensorView(v.data() + at, DType::kF32, Shape{part.size()}), a,
                      separate ? store.flat_value().slice(0, part.begin, part.size()) : TensorView{});
    }
    mo += range.size();
  }
  if (sharded) r.buckets->all_gather_shards(store.flat_value());
  return res;
}

// The multi-tensor ops give the optimizer exactly the results of the per-tensor ops on the CPU:
// one rank, TP 2 (gradient norm parameter by parameter, duplicates left out) and the distributed
// optimizer on DP 2 (fragment by fragment), at bf16 and fp32, over three steps.
TEST(DistributedOptimizer, MultiTensorStepEqualsPerTensorOpsBitForBit) {
  struct Case {
    const char* name;
    int world, tp;
    bool distributed;
  };
  for (const Case& c : {Case{"one rank", 1, 1, false}, Case{"tp2", 2, 2, false}, Case{"dp2 distributed", 2, 1, true}}) {
    for (const auto precision : {model::Precision::kBf16, model::Precision::kFp32}) {
      SCOPED_TRACE(fmt::format("{} {}", c.name, model::precision_name(precision)));
      comm::LocalWorld world(c.world, 30s);
      world.run([&](comm::Communicator& w) {
        Rank got(w, c.tp, precision, c.distributed, 30000);
        Rank ref(w, c.tp, precision, c.distributed, 30000);
        std::vector<float> m(static_cast<std::size_t>(ref.optimizer->exp_avg().numel()), 0.0f), v = m;
        for (int step = 1; step <= 3; ++step) {
          got.set_grads(step);
          ref.set_grads(step);
          const OptimizerStepResult a = got.optimizer->step(1e-3 * step, 1.0, 1.0);
          const OptimizerStepResult b = reference_step(ref, m, v, step, 1e-3 * step);
          ASSERT_FALSE(a.skipped);
          EXPECT_EQ(a.grad_norm, b.grad_norm);
          EXPECT_EQ(a.clip_coeff, b.clip_coeff);
        }
        EXPECT_EQ(got.optimizer->steps(), 3);
        const auto& gs = got.model->parameters();
        const auto& rs = ref.model->parameters();
        const TensorView gv = gs.flat_value(), rv = rs.flat_value();
        ASSERT_EQ(gv.nbytes(), rv.nbytes());
        EXPECT_EQ(std::memcmp(gv.raw(), rv.raw(), gv.nbytes()), 0) << "compute copies differ";
        EXPECT_EQ(to_host(gs.flat_master()), to_host(rs.flat_master()));
        EXPECT_EQ(to_host(got.optimizer->exp_avg()), m);
        EXPECT_EQ(to_host(got.optimizer->exp_avg_sq()), v);
      });
    }
  }
}

// An inf/nan gradient anywhere makes every rank skip the step, with nothing updated anywhere: in
// one DP rank's shard only (the others' shards are finite), and in a duplicate parameter that does
// not count in the norm (a LayerNorm weight on TP rank 1).
TEST(DistributedOptimizer, OverflowDecisionIsTheSameOnEveryRank) {
  struct Case {
    const char* name;
    int world, tp;
    bool distributed;
    int bad_rank;
    const char* param;  // where the non-finite gradient goes (its first element this rank owns)
  };
  const char* qkv = "model.language_model.encoder.layers.1.self_attention.query_key_value.weight";
  const char* ln = "model.language_model.encoder.layers.0.input_layernorm.weight";
  for (const Case& c : {Case{"one DP rank's shard", 2, 1, true, 1, qkv}, Case{"one DP rank's shard, TP 2", 4, 2, true, 3, qkv},
                        Case{"a duplicate on TP rank 1", 2, 2, false, 1, ln},
                        Case{"a duplicate on TP rank 1, distributed", 4, 2, true, 1, ln}}) {
    for (const float bad : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
      SCOPED_TRACE(fmt::format("{} ({})", c.name, bad));
      std::mutex mu;
      int skipped = 0;
      comm::LocalWorld world(c.world, 30s);
      world.run([&](comm::Communicator& w) {
        Rank r(w, c.tp, model::Precision::kFp16, c.distributed, 20000);
        r.set_grads(1);
        auto& store = r.model->parameters();
        if (w.rank() == c.bad_rank) {
          const model::Parameter* p = store.find(c.param);
          ASSERT_NE(p, nullptr);
          // An element of p this rank's optimizer updates.
          std::int64_t at = -1;
          for (const auto& range : r.optimizer->owned_ranges()) {
            const auto part = range.intersect({p->offset, p->offset + p->numel()});
            if (part.size() > 0) {
              at = part.begin;
              break;
            }
          }
          ASSERT_GE(at, 0) << "rank " << w.rank() << " owns nothing of " << c.param;
          ops::fill(r.ctx, store.flat_grad().slice(0, at, 1), bad);
        }
        const std::vector<float> before = to_host(store.flat_value());
        const OptimizerStepResult res = r.optimizer->step(1e-3, 1024.0, 1.0);
        EXPECT_EQ(to_host(store.flat_value()), before) << "rank " << w.rank() << " changed its weights";
        EXPECT_EQ(r.optimizer->steps(), res.skipped ? 0 : 1);
        std::lock_guard lock(mu);
        skipped += res.skipped ? 1 : 0;
      });
      EXPECT_EQ(skipped, c.world);
    }
  }
}

// A checkpoint of the distributed optimizer that lacks a moment fails the load with an error
// naming the file and the tensor on every rank, instead of training on zeros.
TEST(DistributedOptimizer, LoadingACheckpointWithAMissingMomentNamesIt) {
  TempDir dir("distopt_fault");
  const fs::path ckpt = dir.path() / "ckpt";
  const std::string victim = "exp_avg_sq.model.language_model.encoder.layers.1.mlp.dense_4h_to_h.weight";
  {
    comm::LocalWorld world(2, 30s);
    world.run([&](comm::Communicator& w) {
      Rank r(w, 1, model::Precision::kBf16, true, 20000);
      r.set_grads(1);
      ASSERT_FALSE(r.optimizer->step(1e-3, 1.0, 1.0).skipped);
      CheckpointState st;
      st.model = r.model->config_json();
      st.optimizer_steps = 1;
      save_checkpoint(ckpt, st, r.model->parameters(), r.optimizer.get(), r.ctx, r.parallel);
    });
  }
  // Rewrite optimizer.safetensors without one tensor.
  const fs::path file = ckpt / checkpoint_shard_name(0, 0) / "optimizer.safetensors";
  {
    std::vector<std::vector<float>> keep;
    SafetensorsWriter out;
    {
      SafetensorsReader in(file);
      for (const auto& e : in.entries()) {
        if (e.name == victim) continue;
        const TensorView t = in.view(e.name);
        keep.emplace_back(t.data<float>(), t.data<float>() + t.numel());
        out.add(e.name, TensorView(keep.back().data(), DType::kF32, e.shape));
      }
    }
    checkpoint::write_shard_file(out, file);  // with checksums, so only the missing tensor is wrong
    auto meta = nlohmann::json::parse(read_file(ckpt / "metadata.json"));
    meta["files"][checkpoint_shard_name(0, 0) + "/optimizer.safetensors"] = fs::file_size(file);
    write_file_atomic(ckpt / "metadata.json", meta.dump());
  }
  std::mutex mu;
  std::vector<std::string> errors;
  comm::LocalWorld world(2, 30s);
  world.run([&](comm::Communicator& w) {
    Rank r(w, 1, model::Precision::kBf16, true, 20000);
    try {
      load_checkpoint(ckpt, r.model->parameters(), r.optimizer.get(), r.ctx, r.parallel);
    } catch (const DataError& e) {
      std::lock_guard lock(mu);
      errors.push_back(e.what());
    }
  });
  ASSERT_EQ(errors.size(), 2u);
  for (const auto& e : errors) {
    EXPECT_NE(e.find(file.string()), std::string::npos) << e;
    EXPECT_NE(e.find("tensor '" + victim + "' is missing"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace bignlp::train
