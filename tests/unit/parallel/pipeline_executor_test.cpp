// The executor runs real schedules across thread ranks on a toy model (elementwise tanh layers):
// gradients and losses equal the serial computation for 1F1B and interleaved pipelines.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <mutex>

#include "bignlp/comm/local_communicator.h"
#include "bignlp/comm/parallel_groups.h"
#include "bignlp/parallel/pipeline_executor.h"
#include "bignlp/parallel/stage_plan.h"

namespace bignlp::parallel {
namespace {

using namespace std::chrono_literals;
constexpr int kWidth = 6;

struct ToyProblem {
  int layers = 8, microbatches = 4;
  std::vector<std::vector<float>> a, b;      // per layer (kWidth)
  std::vector<std::vector<float>> x, target;  // per micro-batch (kWidth)
  explicit ToyProblem(int l, int m) : layers(l), microbatches(m) {
    for (int i = 0; i < l; ++i) {
      a.emplace_back();
      b.emplace_back();
      for (int k = 0; k < kWidth; ++k) {
        a.back().push_back(0.5f + 0.05f * static_cast<float>((i * 7 + k * 3) % 11));
        b.back().push_back(0.02f * static_cast<float>((i * 5 + k) % 7) - 0.05f);
      }
    }
    for (int j = 0; j < m; ++j) {
      x.emplace_back();
      target.emplace_back();
      for (int k = 0; k < kWidth; ++k) {
        x.back().push_back(std::sin(static_cast<float>(j * kWidth + k)));
        target.back().push_back(std::cos(static_cast<float>(3 * j + k)));
      }
    }
  }
};

// Layer l: y = tanh(a_l * x + b_l); micro-batch loss = sum(y_L * target) / M.
struct Grads {
  std::map<int, std::vector<float>> da, db;
  double loss = 0;
};

Grads serial(const ToyProblem& pr) {
  Grads g;
  for (int l = 0; l < pr.layers; ++l) {
    g.da[l].assign(kWidth, 0);
    g.db[l].assign(kWidth, 0);
  }
  for (int j = 0; j < pr.microbatches; ++j) {
    std::vector<std::vector<float>> xs{pr.x[static_cast<std::size_t>(j)]};
    for (int l = 0; l < pr.layers; ++l) {
      std::vector<float> y(kWidth);
      for (int k = 0; k < kWidth; ++k) y[k] = std::tanh(pr.a[l][k] * xs.back()[k] + pr.b[l][k]);
      xs.push_back(y);
    }
    std::vector<float> dy(kWidth);
    for (int k = 0; k < kWidth; ++k) {
      g.loss += xs.back()[k] * pr.target[j][k] / pr.microbatches;
      dy[k] = pr.target[j][k] / pr.microbatches;
    }
    for (int l = pr.layers - 1; l >= 0; --l) {
      for (int k = 0; k < kWidth; ++k) {
        const float y = xs[l + 1][k], dz = dy[k] * (1 - y * y);
        g.da[l][k] += dz * xs[l][k];
        g.db[l][k] += dz;
        dy[k] = dz * pr.a[l][k];
      }
    }
  }
  return g;
}

class ToyStage final : public PipelineModel {
 public:
  ToyStage(const ToyProblem& pr, const StagePlan& plan, int stage) : pr_(pr), plan_(plan), stage_(stage) {
    for (int l : plan.stage_layers(stage)) {
      grads.da[l].assign(kWidth, 0);
      grads.db[l].assign(kWidth, 0);
    }
  }
  Shape boundary_shape() const override { return Shape{kWidth}; }
  DType boundary_dtype() const override { return DType::kF32; }

  void forward(int mb, int chunk, const TensorView& input, const TensorView& output) override {
    std::vector<float> x = input.defined() ? std::vector<float>(input.data<float>(), input.data<float>() + kWidth)
                                           : pr_.x[static_cast<std::size_t>(mb)];
    EXPECT_EQ(input.defined(), !plan_.has_embedding(stage_, chunk));
    auto& saved = acts_[{mb, chunk}];
    saved.push_back(x);
    const LayerRange range = plan_.layers(stage_, chunk);
    for (int l = range.begin; l < range.end; ++l) {
      for (int k = 0; k < kWidth; ++k) x[k] = std::tanh(pr_.a[l][k] * x[k] + pr_.b[l][k]);
      saved.push_back(x);
    }
    if (plan_.has_head(stage_, chunk)) {
      EXPECT_FALSE(output.defined());
      for (int k = 0; k < kWidth; ++k) grads.loss += x[k] * pr_.target[mb][k] / pr_.microbatches;
    } else {
      std::copy(x.begin(), x.end(), output.data<float>());
    }
  }

  void backward(int mb, int chunk, const TensorView& og, const TensorView& ig, bool last_of_chunk) override {
    std::vector<float> dy(kWidth);
    if (plan_.has_head(stage_, chunk)) {
      EXPECT_FALSE(og.defined());
      for (int k = 0; k < kWidth; ++k) dy[k] = pr_.target[mb][k] / pr_.microbatches;
    } else {
      std::copy(og.data<float>(), og.data<float>() + kWidth, dy.begin());
    }
    auto& saved = acts_.at({mb, chunk});
    const LayerRange range = plan_.layers(stage_, chunk);
    for (int l = range.end - 1; l >= range.begin; --l) {
      const auto& xin = saved[static_cast<std::size_t>(l - range.begin)];
      const auto& y = saved[static_cast<std::size_t>(l - range.begin + 1)];
      for (int k = 0; k < kWidth; ++k) {
        const float dz = dy[k] * (1 - y[k] * y[k]);
        grads.da[l][k] += dz * xin[k];
        grads.db[l][k] += dz;
        dy[k] = dz * pr_.a[l][k];
      }
    }
    acts_.erase({mb, chunk});
    if (ig.defined()) std::copy(dy.begin(), dy.end(), ig.data<float>());
    EXPECT_EQ(ig.defined(), !plan_.has_embedding(stage_, chunk));
    if (last_of_chunk) ++last_flags[chunk];
    ++backwards[chunk];
  }

  Grads grads;
  std::map<int, int> last_flags, backwards;

 private:
  const ToyProblem& pr_;
  const StagePlan& plan_;
  int stage_;
  std::map<std::pair<int, int>, std::vector<std::vector<float>>> acts_;
};

void run_pipeline_case(int p, int vp, int m, int layers) {
  const ToyProblem pr(layers, m);
  const Grads ref = serial(pr);
  const StagePlan plan(layers, p, vp);
  std::mutex mu;
  Grads merged;
  comm::LocalWorld world(p, 20s);
  world.run([&](comm::Communicator& w) {
    const comm::ProcessGrid grid(p, w.rank(), 1, p);
    auto groups = comm::ParallelGroups::create(w, grid);
    CpuAllocator alloc;
    ToyStage stage(pr, plan, grid.pp_rank());
    PipelineExecutor exec(groups.pp.get(), groups.pp_backward.get(), alloc);
    exec.run(pipeline_schedule(p, grid.pp_rank(), m, vp), vp, stage);
    for (int c = 0; c < vp; ++c) {
      EXPECT_EQ(stage.last_flags[c], 1);
      EXPECT_EQ(stage.backwards[c], m);
    }
    std::lock_guard lock(mu);
    for (auto& [l, v] : stage.grads.da) merged.da[l] = v;
    for (auto& [l, v] : stage.grads.db) merged.db[l] = v;
    merged.loss += stage.grads.loss;
  });
  EXPECT_NEAR(merged.loss, ref.loss, 1e-5);
  ASSERT_EQ(merged.da.size(), static_cast<std::size_t>(layers));
  for (int l = 0; l < layers; ++l) {
    for (int k = 0; k < kWidth; ++k) {
      // Same operations in the same order per micro-batch: bit-identical.
      EXPECT_EQ(merged.da[l][k], ref.da.at(l)[k]) << "layer " << l;
      EXPECT_EQ(merged.db[l][k], ref.db.at(l)[k]) << "layer " << l;
    }
  }
}

TEST(PipelineExecutor, OneFOneBTwoStages) { run_pipeline_case(2, 1, 4, 4); }
TEST(PipelineExecutor, OneFOneBFourStagesFewMicroBatches) { run_pipeline_case(4, 1, 3, 8); }
TEST(PipelineExecutor, InterleavedTwoStagesTwoChunks) { run_pipeline_case(2, 2, 4, 8); }
TEST(PipelineExecutor, InterleavedFourStagesTwoChunks) { run_pipeline_case(4, 2, 8, 8); }
TEST(PipelineExecutor, InterleavedAllWarmup) { run_pipeline_case(2, 4, 2, 8); }

}  // namespace
}  // namespace bignlp::parallel
