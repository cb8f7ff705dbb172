// Result collection: step times from our training log line, the TFLOPS of the reference's worked
// examples, and collect_results over fake run folders (ranking, failures, pruned candidates, the
// optimal config).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "bignlp/config/yaml.h"
#include "bignlp/core/file_io.h"
#include "bignlp/hp/pipeline.h"

namespace bignlp::hp {
namespace {

namespace fs = std::filesystem;

std::string step_lines(int n, double first, double rest) {
  std::string s = "[info] starting\n";
  for (int i = 1; i <= n; ++i) {
    s += fmt::format(
        "global_step: {} | consumed_samples: {} | reduced_train_loss: 10.1 | lr: 1.0e-04 | train_step_timing in s: "
        "{:.3f} | tokens/s: 100.0 | TFLOP/s/device: 0.010\n",
        i, i * 8, i <= 5 ? first : rest);
  }
  return s;
}

TEST(ParseStepTimes, ReadsOurTrainingLogLine) {
  const auto t = parse_step_times(step_lines(8, 3.0, 1.5) + "train_step_timing in s: 9.0 (not a step line)\n");
  ASSERT_EQ(t.size(), 8u);
  EXPECT_DOUBLE_EQ(t[0], 3.0);
  EXPECT_DOUBLE_EQ(t[7], 1.5);
  EXPECT_DOUBLE_EQ(*mean_step_time(t), 1.5);  // the first five dropped
  EXPECT_FALSE(mean_step_time({1, 2, 3, 4, 5, 6}).has_value());
  EXPECT_DOUBLE_EQ(*mean_step_time({9, 9, 9, 9, 9, 1, 2}), 1.5);
}

TEST(ModelFlops, WorkedExamplesOfTheReference) {
  // gpt3 5B on 16 nodes at 10 s per step: 13700.79 TFLOPS aggregate, 107.04 per GPU.
  FlopsShape g{Family::kGpt3, 2048, 2048, 0, 4096, 24, 4 * 4096, 51200};
  EXPECT_DOUBLE_EQ(round_to(model_flops_per_step(g) / 10 / 1e12, 2), 13700.79);
  EXPECT_DOUBLE_EQ(round_to(model_flops_per_step(g) / 10 / 1e12 / 128, 2), 107.04);
  // 175B on 128 nodes at 20 s: 225746.45 / 220.46.
  FlopsShape big{Family::kGpt3, 2048, 2048, 0, 12288, 96, 4 * 12288, 51200};
  EXPECT_DOUBLE_EQ(round_to(model_flops_per_step(big) / 20 / 1e12, 2), 225746.45);
  EXPECT_DOUBLE_EQ(round_to(model_flops_per_step(big) / 20 / 1e12 / 1024, 2), 220.46);
}

class Collect : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("hp_collect_{}", ::getpid());
    fs::remove_all(dir_);
    s_.family = Family::kGpt3;
    s_.model_size_in_b = 0.0034;
    s_.size_label = "0.0034";
    s_.num_nodes = 1;
    s_.gpus_per_node = 2;
    s_.max_training_days = 1;
    s_.num_tokens_in_b = 0.001;
    s_.vocab_size = 50257;
    s_.seq_length = 128;
    s_.max_steps_per_run = 10;
    s_.custom_config = "conf/training/gpt3/tiny.yaml";
    s_.logs = dir_;
    s_.grid.tensor_parallel_sizes = std::vector<int>{1, 2};
    s_.grid.pipeline_parallel_sizes = std::vector<int>{1};
    s_.grid.micro_batch_sizes = std::vector<int>{2, 4};
    s_.grid.act_ckpt_layers = std::vector<int>{0};
  }
  void TearDown() override { fs::remove_all(dir_); }
  void run_log(const std::string& name, const std::string& out, const std::string& err = "") {
    const fs::path d = dir_ / "training_logs" / name;
    fs::create_directories(d);
    write_file_atomic(d / "log-bignlp-x_1.out", out);
    write_file_atomic(d / "log-bignlp-x_1.err", err);
  }
  fs::path dir_;
  TrainSettings s_;
};

TEST_F(Collect, RanksRunsAndReportsFailuresAndPrunedCandidates) {
  // Memory limit between the estimates: the TP 1, micro batch 4 candidate is pruned.
  SearchPlan probe = plan_search(s_, config::load_yaml_file("conf/training/gpt3/tiny.yaml"));
  ASSERT_EQ(probe.candidates.size(), 4u);
  double largest = 0, second = 0;
  for (const auto& c : probe.candidates) largest = std::max(largest, c.estimated_gb);
  for (const auto& c : probe.candidates) {
    if (c.estimated_gb < largest) second = std::max(second, c.estimated_gb);
  }
  s_.memory_limit_gb = (largest + second) / 2;
  const SearchPlan plan = plan_search(s_, config::load_yaml_file("conf/training/gpt3/tiny.yaml"));
  write_plan(plan);
  std::vector<std::string> fitting;
  for (const auto& c : plan.candidates) {
    if (c.fits) fitting.push_back(c.name);
    EXPECT_EQ(c.config.at("trainer.max_steps").as_int(), 10);
    EXPECT_EQ(c.config.at("trainer.log_every_n_steps").as_int(), 1);
  }
  ASSERT_EQ(fitting.size(), 3u);
  EXPECT_TRUE(fs::exists(dir_ / "base_cfg_0.0034b.yaml"));
  EXPECT_TRUE(fs::exists(dir_ / "candidate_configs" / (fitting[0] + ".yaml")));
  run_log(fitting[0], step_lines(10, 5.0, 2.0));
  run_log(fitting[1], step_lines(10, 5.0, 1.0));
  run_log(fitting[2], step_lines(3, 5.0, 1.0), "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB\n");

  const Collected c = collect_results(plan);
  ASSERT_EQ(c.summary.size(), 2u);
  EXPECT_DOUBLE_EQ(c.summary[0].time_per_step, 1.0);
  EXPECT_DOUBLE_EQ(c.summary[1].time_per_step, 2.0);
  EXPECT_DOUBLE_EQ(c.summary[0].samples_per_second, 8.0);
  ASSERT_TRUE(c.best.has_value());
  EXPECT_EQ(*c.best, fitting[1]);
  ASSERT_EQ(c.failed.size(), 2u);
  bool oom = false, pruned = false;
  for (const auto& f : c.failed) {
    oom |= f.error_message.find("CUDA out of memory") != std::string::npos;
    pruned |= f.error_message.find("not launched: estimated") != std::string::npos;
  }
  EXPECT_TRUE(oom);
  EXPECT_TRUE(pruned);
  const std::string csv = read_file(dir_ / "final_result" / "final_summary_1nodes.csv");
  EXPECT_TRUE(csv.starts_with("Model Name,Model Size,Seq Length,TP,PP,MBS,Act Ckpt Layers,Act Ckpt Micro Bathes,"));
  EXPECT_NE(csv.find(",Time per Step,Samples per Second,Model TFLOPS / GPU,Model TFLOPS Aggregate,Config Name"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "final_result" / "failed_jobs_1nodes.csv"));
  const auto best = config::load_yaml_file(dir_ / "final_result" / "optimal_config_0.0034b_1nodes.yaml");
  const auto winner = *std::find_if(plan.candidates.begin(), plan.candidates.end(),
                                    [&](const PlannedCandidate& p) { return p.name == fitting[1]; });
  EXPECT_EQ(best.at("model.tensor_model_parallel_size"), winner.config.at("model.tensor_model_parallel_size"));
  EXPECT_EQ(best.at("model.micro_batch_size"), winner.config.at("model.micro_batch_size"));
  // A ready training config: the full run's steps, not the search run's.
  EXPECT_EQ(best.at("trainer.max_steps").as_int(), 976);
  EXPECT_EQ(best.at("run.name").as_string(), "gpt3_0.0034b");
}

}  // namespace
}  // namespace bignlp::hp
