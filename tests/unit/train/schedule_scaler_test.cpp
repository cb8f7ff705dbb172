#include <gtest/gtest.h>

#include <cmath>

#include "bignlp/core/error.h"
#include "bignlp/train/loss_scaler.h"
#include "bignlp/train/lr_schedule.h"

namespace bignlp::train {
namespace {

constexpr double kPi = 3.14159265358979323846;

TEST(LrScheduleTest, CosineWithoutConstantSteps) {
  LrScheduleConfig c;
  c.lr = 1e-3;
  c.warmup_steps = 5;
  c.min_lr = 1e-4;
  c.max_steps = 60;
  const LrSchedule s(c);
  EXPECT_DOUBLE_EQ(s.lr(0), 1e-3 * 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.lr(5), 1e-3);
  EXPECT_NEAR(s.lr(6), 1e-4 + 0.9e-3 * 0.5 * (1 + std::cos(kPi * 1 / 55.0)), 1e-15);
  EXPECT_NEAR(s.lr(60), 1e-4, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(61), 1e-4);
}

TEST(LrScheduleTest, CosineWithConstantStepsIsMegatronStyle) {
  LrScheduleConfig c;
  c.lr = 2e-4;
  c.warmup_steps = 10;
  c.constant_steps = 20;
  c.min_lr = 2e-5;
  c.max_steps = 100;
  const LrSchedule s(c);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.0);  // warm-up from 0
  EXPECT_DOUBLE_EQ(s.lr(5), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr(10), 2e-4);
  // decay over D = 100 - 30 = 70 steps
  EXPECT_NEAR(s.lr(45), 2e-5 + 1.8e-4 * 0.5 * (std::cos(kPi * 35 / 70.0) + 1), 1e-15);
  EXPECT_NEAR(s.lr(80), 2e-5, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(90), 2e-5);  // min_lr held in the constant phase
}

TEST(LrScheduleTest, WarmupAnnealingAndConstant) {
  LrScheduleConfig c;
  c.name = "WarmupAnnealing";
  c.lr = 1e-4;
  c.warmup_ratio = 0.1;
  c.min_lr = 1e-5;
  c.max_steps = 100;
  const LrSchedule s(c);
  EXPECT_EQ(s.warmup_steps(), 10);
  EXPECT_DOUBLE_EQ(s.lr(4), 1e-4 * 5 / 11.0);
  EXPECT_NEAR(s.lr(55), 1e-5 + 0.5 * 9e-5, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(101), 1e-5);
  c.name = "";
  EXPECT_DOUBLE_EQ(LrSchedule(c).lr(77), 1e-4);
}

TEST(LrScheduleTest, BadConfigsNameTheKey) {
  LrScheduleConfig c;
  c.max_steps = 10;
  c.name = "Cosine";
  try {
    LrSchedule s(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.optim.sched.name"), std::string::npos);
  }
  c.name = "CosineAnnealing";
  c.warmup_steps = 8;
  c.constant_steps = 5;
  EXPECT_THROW(LrSchedule{c}, ConfigError);
}

TEST(LossScalerTest, HysteresisBackoffAndGrowth) {
  LossScalerConfig c;
  c.enabled = true;
  c.init_scale = 1024;
  c.growth_interval = 3;
  c.hysteresis = 2;
  DynamicLossScaler s(c);
  s.update(true);  // first overflow: hysteresis absorbs it
  EXPECT_EQ(s.scale(), 1024);
  s.update(true);  // second in a row: halve
  EXPECT_EQ(s.scale(), 512);
  s.update(false);  // clean step resets hysteresis (NeMo)
  s.update(true);
  EXPECT_EQ(s.scale(), 512);
  s.update(false);
  s.update(false);
  s.update(false);  // three clean steps since the last overflow: double
  EXPECT_EQ(s.scale(), 1024);
  DynamicLossScaler off(LossScalerConfig{});
  off.update(true);
  EXPECT_EQ(off.scale(), 1.0);
}

}  // namespace
}  // namespace bignlp::train
