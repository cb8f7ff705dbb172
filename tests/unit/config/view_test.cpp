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

TEST(ConfigViewTest, StringListTakesOneValueOrSeveral) {
  const ConfigNode root = load_yaml_string(
      "one: /data/a\nblend: [0.3, /data/a, 0.7, /data/b]\nholes: [x, null, 2]\nnothing: null\n"
      "dict: {a: 1}\nunset:\n  - x\n  - ???\n");
  ConfigView v(root);
  EXPECT_EQ(v.string_list("one"), (std::vector<std::string>{"/data/a"}));
  EXPECT_EQ(v.string_list("blend"), (std::vector<std::string>{"0.3", "/data/a", "0.7", "/data/b"}));
  EXPECT_EQ(v.string_list("holes"), (std::vector<std::string>{"x", "2"}));
  EXPECT_TRUE(v.string_list("nothing").empty());
  EXPECT_TRUE(v.string_list("absent").empty());
  EXPECT_EQ(error_of([&] { (void)v.string_list("dict"); }), "<string>:5:7: dict: expected list, got a dict");
  EXPECT_NE(error_of([&] { (void)v.string_list("unset"); }).find("unset.1: Missing mandatory value"),
            std::string::npos);
  EXPECT_TRUE(v.unused_keys().empty());
}

TEST(ConfigViewTest, AsOverrideWritesTheFullKeyAndValue) {
  ConfigView model = ConfigView(sample()).sub("model");
  EXPECT_EQ(model.as_override("hidden_size"), "model.hidden_size=4096");
  EXPECT_EQ(model.as_override("ffn_hidden_size"), "model.ffn_hidden_size=16384");  // resolved
  EXPECT_EQ(model.as_override("fp16"), "model.fp16=true");
  EXPECT_EQ(model.as_override("lr"), "model.lr=0.0001");
  EXPECT_EQ(model.as_override("tokenizer"), "model.tokenizer=null");
  EXPECT_EQ(model.as_override("nope"), "model.nope=null");
  EXPECT_EQ(model.as_override("betas"), "model.betas=[0.9, 0.95]");
}

TEST(ConfigViewTest, ScalarTextWritesValuesAsOverridesDo) {
  EXPECT_EQ(scalar_text(ConfigNode::boolean(true)), "true");
  EXPECT_EQ(scalar_text(ConfigNode::integer(20)), "20");
  EXPECT_EQ(scalar_text(ConfigNode::floating(1e-5)), "1e-05");
  EXPECT_EQ(scalar_text(ConfigNode::string("gpt3_5b")), "gpt3_5b");
  EXPECT_EQ(scalar_text(ConfigNode::null_value()), std::nullopt);
  EXPECT_EQ(scalar_text(ConfigNode::missing()), std::nullopt);
  EXPECT_EQ(scalar_text(ConfigNode::list()), std::nullopt);
}

}  // namespace
}  // namespace bignlp::config
