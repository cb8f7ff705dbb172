// The worker-key schema (config/worker_keys.h): types and ranges of the training keys, and the
// warm-up + constant steps rule, with the value's origin in each message.
#include "bignlp/config/worker_keys.h"

#include <gtest/gtest.h>

#include "bignlp/config/yaml.h"

namespace bignlp::config {
namespace {

std::vector<std::string> problems_of(const std::string& yaml) {
  YamlLoadOptions o;
  o.display_name = "train.yaml";
  const ConfigNode root = load_yaml_string(yaml, o);
  return check_training_keys(ConfigView(root));
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

TEST(WorkerKeys, AValidConfigHasNoProblems) {
  EXPECT_TRUE(problems_of("trainer:\n  max_steps: 100\n  devices: 8\nmodel:\n  micro_batch_size: 4\n  hidden_dropout: 0.1\n"
                          "  optim:\n    lr: 1.0e-4\n    sched:\n      name: CosineAnnealing\n      warmup_steps: 10\n"
                          "      constant_steps: 90\n")
                  .empty());
  // Absent and null keys are the binding's business.
  EXPECT_TRUE(problems_of("trainer:\n  max_steps: 5\n  devices: null\n").empty());
}

TEST(WorkerKeys, WrongTypesAndOutOfRangeValuesNameTheKeyValueAndLine) {
  const auto p = problems_of("trainer:\n  max_steps: abc\n  devices: 0\nmodel:\n  attention_dropout: 1.0\n"
                             "  optim:\n    lr: 0\n    weight_decay: -0.1\n");
  ASSERT_EQ(p.size(), 5u) << joined(p);
  EXPECT_EQ(p[0], "trainer.max_steps=abc (train.yaml:2:14): must be an integer >= 1");
  EXPECT_EQ(p[1], "trainer.devices=0 (train.yaml:3:12): must be an integer >= 1");
  EXPECT_EQ(p[2], "model.attention_dropout=1.0 (train.yaml:5:22): must be a number >= 0 and < 1");
  EXPECT_EQ(p[3], "model.optim.lr=0 (train.yaml:7:9): must be a number > 0");
  EXPECT_EQ(p[4], "model.optim.weight_decay=-0.1 (train.yaml:8:19): must be a number >= 0");
}

TEST(WorkerKeys, WarmupAndConstantStepsMustFitInMaxSteps) {
  const std::string base = "trainer:\n  max_steps: 100\nmodel:\n  optim:\n    sched:\n      name: CosineAnnealing\n";
  EXPECT_TRUE(problems_of(base + "      warmup_steps: 50\n      constant_steps: 50\n").empty());
  auto p = problems_of(base + "      warmup_steps: 50\n      constant_steps: 51\n");
  ASSERT_EQ(p.size(), 1u) << joined(p);
  EXPECT_NE(p[0].find("model.optim.sched.warmup_steps=50 (train.yaml:7:21) + model.optim.sched.constant_steps=51 "
                      "(train.yaml:8:23) = 101 warm-up + constant steps exceed trainer.max_steps=100 (train.yaml:2:14)"),
            std::string::npos)
      << p[0];
  // A ratio counts as its share of max_steps.
  p = problems_of(base + "      warmup_ratio: 0.5\n      constant_steps: 60\n");
  ASSERT_EQ(p.size(), 1u) << joined(p);
  EXPECT_NE(p[0].find("= 110 warm-up"), std::string::npos) << p[0];
  // Without a schedule the lr is constant: nothing to fit.
  EXPECT_TRUE(problems_of("trainer:\n  max_steps: 10\nmodel:\n  optim:\n    sched:\n      name: null\n"
                          "      warmup_steps: 50\n")
                  .empty());
}

}  // namespace
}  // namespace bignlp::config
