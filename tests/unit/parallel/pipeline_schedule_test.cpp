// Stage plans and pipeline schedules: golden tables derived by hand from Megatron's phases, and a
// simulation of all stages together (matching sends/receives, no deadlock) over many shapes.
#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/parallel/pipeline_schedule.h"
#include "bignlp/parallel/stage_plan.h"

namespace bignlp::parallel {
namespace {

TEST(StagePlan, MegatronPartitionExamples) {
  const StagePlan interleaved(8, 2, 4);
  EXPECT_EQ(interleaved.to_string(), "stage 0: [0,1) [2,3) [4,5) [6,7) | stage 1: [1,2) [3,4) [5,6) [7,8)");
  EXPECT_EQ(interleaved.stage_layers(1), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(interleaved.owner(6), (std::pair<int, int>{0, 3}));
  const StagePlan plain(24, 4);
  EXPECT_EQ(plain.layers(2), (LayerRange{12, 18}));
  EXPECT_TRUE(plain.has_embedding(0, 0));
  EXPECT_TRUE(plain.has_head(3, 0));
  EXPECT_FALSE(plain.has_head(2, 0));
  const StagePlan v2(8, 2, 2);
  EXPECT_EQ(v2.to_string(), "stage 0: [0,2) [4,6) | stage 1: [2,4) [6,8)");
  for (int l = 0; l < 8; ++l) {
    const auto [s, c] = v2.owner(l);
    const LayerRange r = v2.layers(s, c);
    EXPECT_TRUE(l >= r.begin && l < r.end) << l;
  }
}

TEST(StagePlan, RejectsIndivisibleLayerCounts) {
  try {
    StagePlan(10, 4);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.num_layers (10) must be divisible by model.pipeline_model_parallel_size (4)"),
              std::string::npos);
  }
  EXPECT_THROW(StagePlan(8, 2, 3), ConfigError);
}

std::string schedule(int p, int r, int m, int vp = 1) { return to_string(pipeline_schedule(p, r, m, vp), vp > 1); }

TEST(PipelineSchedule, GoldenOneFOneB) {
  EXPECT_EQ(schedule(2, 0, 4), "F0 SF0 F1 SF1 RB0 B0 F2 SF2 RB1 B1 F3 SF3 RB2 B2 RB3 B3");
  EXPECT_EQ(schedule(2, 1, 4), "RF0 F0 B0 SB0 RF1 F1 B1 SB1 RF2 F2 B2 SB2 RF3 F3 B3 SB3");
  // p = 4, M = 4: warmup 3/2/1/0.
  EXPECT_EQ(schedule(4, 0, 4), "F0 SF0 F1 SF1 F2 SF2 F3 SF3 RB0 B0 RB1 B1 RB2 B2 RB3 B3");
  EXPECT_EQ(schedule(4, 1, 4), "RF0 F0 SF0 RF1 F1 SF1 RF2 F2 SF2 RB0 B0 SB0 RF3 F3 SF3 RB1 B1 SB1 RB2 B2 SB2 RB3 B3 SB3");
  EXPECT_EQ(schedule(4, 3, 4), "RF0 F0 B0 SB0 RF1 F1 B1 SB1 RF2 F2 B2 SB2 RF3 F3 B3 SB3");
  // Fewer micro-batches than stages: all warmup.
  EXPECT_EQ(schedule(4, 0, 2), "F0 SF0 F1 SF1 RB0 B0 RB1 B1");
  // No pipeline.
  EXPECT_EQ(schedule(1, 0, 3), "F0 B0 F1 B1 F2 B2");
  EXPECT_EQ(to_string(one_f_one_b_schedule(3, 1, 2, true), false), "RF0 F0 SF0 RF1 F1 SF1");
}

TEST(PipelineSchedule, GoldenInterleavedTwoStagesTwoChunks) {
  // p = 2, vp = 2, M = 4 (8 virtual micro-batches), derived step by step from Megatron's
  // forward_backward_pipelining_with_interleaving; warmup 4 on stage 0, 2 on stage 1.
  EXPECT_EQ(schedule(2, 0, 4, 2),
            "F0.0 SF0.0 F1.0 SF1.0 RF0.1 F0.1 SF0.1 RF1.1 F1.1 SF1.1 RB0.1 "
            "F2.0 B0.1 SF2.0 SB0.1 RB1.1 F3.0 B1.1 SF3.0 SB1.1 RF2.1 RB0.0 "
            "F2.1 B0.0 SF2.1 RF3.1 RB1.0 F3.1 B1.0 SF3.1 RB2.1 "
            "B2.1 SB2.1 RB3.1 B3.1 SB3.1 RB2.0 B2.0 RB3.0 B3.0");
  EXPECT_EQ(schedule(2, 1, 4, 2),
            "RF0.0 F0.0 SF0.0 RF1.0 F1.0 SF1.0 RF0.1 "
            "F0.1 B0.1 SB0.1 RF1.1 F1.1 B1.1 SB1.1 RF2.0 RB0.0 F2.0 B0.0 SF2.0 SB0.0 RF3.0 RB1.0 "
            "F3.0 B1.0 SF3.0 SB1.0 RF2.1 F2.1 B2.1 SB2.1 RF3.1 F3.1 B3.1 SB3.1 RB2.0 "
            "B2.0 SB2.0 RB3.0 B3.0 SB3.0");
}

TEST(PipelineSchedule, EveryShapeSimulatesWithMatchedMessagesAndNoDeadlock) {
  int checked = 0;
  for (int p : {1, 2, 3, 4, 8}) {
    for (int vp : {1, 2, 3, 4}) {
      if (vp > 1 && p < 2) continue;
      for (int m : {1, 2, 3, 4, 6, 8, 12, 16}) {
        if (vp > 1 && m % p != 0) continue;
        for (bool fwd_only : {false, true}) {
          std::vector<std::vector<Action>> all;
          for (int r = 0; r < p; ++r) all.push_back(pipeline_schedule(p, r, m, vp, fwd_only));
          SCOPED_TRACE(::testing::Message() << "p " << p << " vp " << vp << " m " << m << " fwd_only " << fwd_only);
          EXPECT_NO_THROW(validate_schedules(all, m, vp, fwd_only));
          EXPECT_NO_THROW(validate_schedules(all, m, vp, fwd_only, ValidationMode::kActivationsThenGradients));
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 150);
}

TEST(PipelineSchedule, OneFOneBKeepsAtMostPMinusRMicroBatchesInFlight) {
  const int p = 4, m = 8;
  for (int r = 0; r < p; ++r) {
    int in_flight = 0, peak = 0;
    for (const auto& a : pipeline_schedule(p, r, m, 1)) {
      if (a.kind == ActionKind::kForward) peak = std::max(peak, ++in_flight);
      if (a.kind == ActionKind::kBackward) --in_flight;
    }
    EXPECT_EQ(peak, p - r) << "stage " << r;
  }
}

TEST(PipelineSchedule, SimulationCatchesBrokenSchedules) {
  const int p = 2, m = 4;
  auto all = std::vector<std::vector<Action>>{pipeline_schedule(p, 0, m, 1), pipeline_schedule(p, 1, m, 1)};
  // A receive for the wrong micro-batch.
  auto wrong = all;
  wrong[1][0].microbatch = 1;
  EXPECT_THROW(validate_schedules(wrong, m, 1), RuntimeError);
  // Stage 1 waits for a gradient that stage 0 only sends... never: a missing send.
  auto missing = all;
  missing[1].erase(missing[1].begin() + 3);  // drop SB0
  EXPECT_THROW(validate_schedules(missing, m, 1), RuntimeError);
  // Stage 0 waits for a gradient before sending the activation stage 1 waits for: deadlock.
  std::vector<std::vector<Action>> dead{
      {{ActionKind::kForward, 0, 0}, {ActionKind::kRecvBackward, 0, 0}, {ActionKind::kBackward, 0, 0},
       {ActionKind::kSendForward, 0, 0}},
      {{ActionKind::kRecvForward, 0, 0}, {ActionKind::kForward, 0, 0}, {ActionKind::kBackward, 0, 0},
       {ActionKind::kSendBackward, 0, 0}}};
  try {
    validate_schedules(dead, 1, 1);
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("deadlock"), std::string::npos) << e.what();
  }
  EXPECT_THROW(interleaved_schedule(4, 0, 6, 2), ConfigError);
}

}  // namespace
}  // namespace bignlp::parallel
