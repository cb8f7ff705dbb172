#include "bignlp/config/view.h"

#include <gtest/gtest.h>

#include "bignlp/config/yaml.h"

namespace bignlp::config {
namespace {

ConfigNode sample() {
  YamlLoadOptions opt;
  opt.display_name = "conf/training/gpt3/5b.yaml";
  opt.key_prefix = "training";
  return load_yaml_string(
      "run:\n  name: gpt3_5b\n  time_limit: 6-00:00:00\nmodel:\n  tensor_model_parallel_size: abc\n"
      "  hidden_size: 4096\n  ffn_hidden_size: ${multiply:4, ${.hidden_size}}\n  lr: 1e-4\n  betas: [0.9, 0.95]\n"
      "  tokenizer: null\n  fp16: true\n  data_dir: ???\n  misspeled: 1\n  extra: {a: 1}\n",
      opt);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ConfigViewTest, TypedReads) {
  ConfigView v(sample());
  EXPECT_EQ(v.get<std::string>("run.name"), "gpt3_5b");
  EXPECT_EQ(v.get<int>("model.hidden_size"), 4096);
  EXPECT_EQ(v.get<std::int64_t>("model.ffn_hidden_size"), 16384);
  EXPECT_DOUBLE_EQ(v.get<double>("model.lr"), 1e-4);
  EXPECT_DOUBLE_EQ(v.get<double>("model.hidden_size"), 4096.0);
  EXPECT_EQ(v.get<std::vector<double>>("model.betas"), (std::vector<double>{0.9, 0.95}));
  EXPECT_TRUE(v.get<bool>("model.fp16"));
  EXPECT_EQ(v.get<std::string>("model.hidden_size"), "4096");
  EXPECT_EQ((v.get<std::map<std::string, int>>("model.extra")), (std::map<std::string, int>{{"a", 1}}));
  EXPECT_EQ(v.get_or<int>("model.num_layers", 24), 24);
  EXPECT_EQ(v.get_or<std::string>("model.tokenizer", "gpt2"), "gpt2");
  EXPECT_FALSE(v.find<int>("model.nope").has_value());
  EXPECT_FALSE(v.has("model.tokenizer"));
  EXPECT_TRUE(v.has("model.hidden_size"));
  ConfigView model = v.sub("model");
  EXPECT_EQ(model.prefix(), "model");
  EXPECT_EQ(model.get<int>("hidden_size"), 4096);
}

TEST(ConfigViewTest, ErrorsNameFileLineColumnAndKeyPath) {
  ConfigView v(sample());
  EXPECT_EQ(error_of([&] { (void)v.get<int>("model.tensor_model_parallel_size"); }),
            "conf/training/gpt3/5b.yaml:5:31: model.tensor_model_parallel_size: expected int, got 'abc'");
  EXPECT_EQ(error_of([&] { (void)v.get<bool>("model.hidden_size"); }),
            "conf/training/gpt3/5b.yaml:6:16: model.hidden_size: expected bool, got 4096 (int)");
  EXPECT_EQ(error_of([&] { (void)v.get<int>("model.tokenizer"); }),
            "conf/training/gpt3/5b.yaml:10:14: model.tokenizer: expected int, got null");
  EXPECT_EQ(error_of([&] { (void)v.get<int>("model.hiden_size"); }),
            "conf/training/gpt3/5b.yaml:5:3: model.hiden_size: required key is missing (did you mean 'model.hidden_size'?)");
  EXPECT_NE(error_of([&] { (void)v.get<std::string>("model.data_dir"); }).find("model.data_dir: Missing mandatory value"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)v.get<std::int8_t>("model.hidden_size"); }).find("out of range"), std::string::npos);
}

TEST(ConfigViewTest, UnusedKeyAudit) {
  ConfigView v(sample());
  (void)v.get<std::string>("run.name");
  v.mark_used("run.time_limit");
  ConfigView model = v.sub("model");
  for (const char* k : {"tensor_model_parallel_size", "hidden_size", "ffn_hidden_size", "lr", "fp16", "data_dir"})
    model.mark_used(k);
  (void)model.get<std::vector<double>>("betas");
  (void)model.find<std::string>("tokenizer");
  (void)model.node("extra");
  EXPECT_EQ(v.unused_keys(), (std::vector<std::string>{"model.misspeled"}));
  EXPECT_EQ(error_of([&] { v.check_all_used("training"); }),
            "unknown key in training (nothing reads it; remove it or fix the spelling):\n  "
            "conf/training/gpt3/5b.yaml:13:14: model.misspeled");
  v.mark_used("model.misspeled");
  EXPECT_NO_THROW(v.check_all_used());
}

TEST(ConfigViewTest, AuditSuggestsTheKeyThatWasRead) {
  ConfigNode root = load_yaml_string("trainer:\n  num_nodes: 1\n  devics: 8\n");
  ConfigView v(root);
  (void)v.get<int>("trainer.num_nodes");
  (void)v.get_or<int>("trainer.devices", 8);
  const std::string e = error_of([&] { v.check_all_used(); });
  EXPECT_NE(e.find("trainer.devics (did you mean 'trainer.devices'?)"), std::string::npos) << e;
}

}  // namespace
}  // namespace bignlp::config
