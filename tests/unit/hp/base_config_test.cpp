// generate_base_config: the reference's test_base_config.py table (hp-tool.md §7), on our
// training templates (conf/training/<family>/...), plus the time formats and train_settings checks.
#include <gtest/gtest.h>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/hp/search.h"

namespace bignlp::hp {
namespace {

using config::ConfigNode;

struct BaseCase {
  const char* model;
  double size;
  const char* label;
  int nodes;
  double days;
  double tokens;
  int vocab, seq;
  // expected
  const char* name;
  const char* time_limit;
  double max_steps;  // approx
  const char* max_time;
  int layers, gbs, hidden, heads;
  int ffn, kv;           // 0: not checked (GPT keeps the template's)
  double init_std;       // 0: not checked
  double lr;             // exact
  double warmup, constant;  // GPT, approx; T5: warmup_ratio 0.01
};

ConfigNode template_for(const std::string& model) {
  if (model == "gpt3") return config::load_yaml_file("conf/training/gpt3/5b.yaml");
  if (model == "t5") return config::load_yaml_file("conf/training/t5/220m.yaml");
  return config::load_yaml_file("conf/training/mt5/3b.yaml");
}

TrainSettings settings_for(const BaseCase& c) {
  TrainSettings s;
  s.family = *parse_family(c.model);
  s.model_size_in_b = c.size;
  s.size_label = c.label;
  s.num_nodes = c.nodes;
  s.gpus_per_node = 8;
  s.gpu_memory_gb = 80;
  s.max_training_days = c.days;
  s.num_tokens_in_b = c.tokens;
  s.vocab_size = c.vocab;
  s.seq_length = c.seq;
  s.logs = ".";
  return s;
}

void expect_approx(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 0.05 * std::abs(want)) << what;
}

TEST(GenerateBaseConfig, TableOfTheReference) {
  const BaseCase cases[] = {
      {"gpt3", 0.126, "0.126", 8, 2, 300, 51200, 2048, "gpt3_0.126b", "2-00:00:00", 572204, "1:23:30:00", 12, 256,
       768, 12, 0, 0, 0.023, 6e-4, 858, 95000},
      {"gpt3", 5.0, "5.0", 20, 6, 300, 51200, 2048, "gpt3_5.0b", "6-00:00:00", 71525, "5:23:30:00", 24, 2048, 4096, 32,
       0, 0, 0.01, 1.2e-4, 107, 11873},
      {"gpt3", 20.0, "20.0", 80, 6.5, 300, 51200, 2048, "gpt3_20.0b", "6-12:00:00", 71525, "6:11:30:00", 44, 2048,
       6144, 48, 0, 0, 0.008165, 1e-4, 107, 11873},
      {"gpt3", 40.0, "40.0", 80, 25.75, 300, 51200, 2048, "gpt3_40.0b", "25-18:00:00", 71525, "25:17:30:00", 48, 2048,
       8192, 64, 0, 0, 0.007, 8e-5, 107, 11873},
      {"gpt3", 175.0, "175.0", 128, 35, 300, 51200, 2048, "gpt3_175.0b", "35-00:00:00", 71525, "34:23:30:00", 96,
       2048, 12288, 96, 0, 0, 0.006, 6e-5, 107, 11873},
      {"t5", 0.22, "0.22", 4, 2, 1000, 29000, 512, "t5_0.22b", "2-00:00:00", 953675, "1:23:30:00", 12, 2048, 768, 12,
       2048, 64, 0, 1e-4, 0, 0},
      {"t5", 2.8, "2.8", 20, 15, 1000, 29000, 512, "t5_2.8b", "15-00:00:00", 1017250, "14:23:30:00", 24, 1920, 2048,
       32, 5120, 64, 0, 1e-4, 0, 0},
      {"t5", 11.0, "11.0", 20, 45, 1000, 29000, 512, "t5_11.0b", "45-00:00:00", 1017250, "44:23:30:00", 24, 1920,
       4096, 64, 10240, 64, 0, 1e-4, 0, 0},
      {"t5", 41.2, "41.2", 40, 85, 1000, 29000, 512, "t5_41.2b", "85-00:00:00", 1017250, "84:23:30:00", 48, 1920,
       6144, 96, 10880, 64, 0, 1e-4, 0, 0},
      {"mt5", 0.17, "0.17", 4, 4, 1000, 250000, 512, "mt5_0.17b", "4-00:00:00", 953675, "3:23:30:00", 8, 2048, 512, 6,
       1024, 64, 0, 1e-4, 0, 0},
      {"mt5", 0.39, "0.39", 8, 5, 1000, 250000, 512, "mt5_0.39b", "5-00:00:00", 953675, "4:23:30:00", 12, 2048, 768,
       12, 2048, 64, 0, 1e-4, 0, 0},
      {"mt5", 3.2, "3.2", 20, 14, 1000, 250000, 512, "mt5_3.2b", "14-00:00:00", 1017250, "13:23:30:00", 24, 1920, 2048,
       32, 5120, 64, 0, 1e-4, 0, 0},
      {"mt5", 11.9, "11.9", 20, 50, 1000, 250000, 512, "mt5_11.9b", "50-00:00:00", 1017250, "49:23:30:00", 24, 1920,
       4096, 64, 10240, 64, 0, 1e-4, 0, 0},
      {"mt5", 24.65, "24.65", 40, 55, 1000, 250000, 512, "mt5_24.65b", "55-00:00:00", 1017250, "54:23:30:00", 36,
       1920, 5120, 80, 10880, 64, 0, 1e-4, 0, 0},
      {"mt5", 42.54, "42.54", 40, 90.25, 1000, 250000, 512, "mt5_42.54b", "90-06:00:00", 1017250, "90:05:30:00", 48,
       1920, 6144, 96, 10880, 64, 0, 1e-4, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const TrainSettings s = settings_for(c);
    const BaseConfig b = generate_base_config(s, template_for(c.model));
    const ConfigNode& cfg = b.config;
    EXPECT_EQ(cfg.at("run.name").as_string(), c.name);
    EXPECT_EQ(cfg.at("run.results_dir").as_string(), "${base_results_dir}/${.name}");
    EXPECT_EQ(cfg.at("run.time_limit").as_string(), c.time_limit);
    EXPECT_EQ(cfg.at("trainer.num_nodes").as_int(), c.nodes);
    EXPECT_EQ(cfg.at("trainer.precision").as_string(), "bf16");
    expect_approx(double(cfg.at("trainer.max_steps").as_int()), c.max_steps, "max_steps");
    EXPECT_EQ(cfg.at("trainer.max_time").as_string(), c.max_time);
    EXPECT_EQ(cfg.at("model.global_batch_size").as_int(), c.gbs);
    EXPECT_DOUBLE_EQ(cfg.at("model.optim.lr").as_double(), c.lr);
    expect_approx(cfg.at("model.optim.sched.min_lr").as_double(), c.lr * 0.1, "min_lr");
    const bool t5 = std::string(c.model) != "gpt3";
    if (!t5) {
      EXPECT_EQ(cfg.at("model.num_layers").as_int(), c.layers);
      EXPECT_EQ(cfg.at("model.hidden_size").as_int(), c.hidden);
      EXPECT_EQ(cfg.at("model.num_attention_heads").as_int(), c.heads);
      EXPECT_EQ(cfg.at("model.encoder_seq_length").as_int(), c.seq);
      EXPECT_EQ(cfg.at("model.data.seq_length").as_int(), c.seq);
      expect_approx(cfg.at("model.init_method_std").as_double(), c.init_std, "init_method_std");
      expect_approx(double(cfg.at("model.optim.sched.warmup_steps").as_int()), c.warmup, "warmup");
      expect_approx(double(cfg.at("model.optim.sched.constant_steps").as_int()), c.constant, "constant");
      // The template's ffn interpolation is kept.
      EXPECT_TRUE(cfg.at("model.ffn_hidden_size").is_interpolation());
      EXPECT_EQ(cfg.at("model.sequence_parallel").as_bool(), false);
    } else {
      for (const char* stack : {"encoder", "decoder"}) {
        const std::string k = std::string("model.") + stack + ".";
        EXPECT_EQ(cfg.at(k + "num_layers").as_int(), c.layers);
        EXPECT_EQ(cfg.at(k + "hidden_size").as_int(), c.hidden);
        EXPECT_EQ(cfg.at(k + "num_attention_heads").as_int(), c.heads);
        EXPECT_EQ(cfg.at(k + "ffn_hidden_size").as_int(), c.ffn);
        EXPECT_EQ(cfg.at(k + "kv_channels").as_int(), c.kv);
        EXPECT_DOUBLE_EQ(cfg.at(k + "init_method_std").as_double(), 0.015);
      }
      EXPECT_DOUBLE_EQ(cfg.at("model.optim.sched.warmup_ratio").as_double(), 0.01);
    }
  }
}

TEST(GenerateBaseConfig, ExactStepsAndTheSuggestedLayout) {
  TrainSettings s;
  s.family = Family::kGpt3;
  s.model_size_in_b = 5;
  s.size_label = "5";
  s.num_nodes = 16;
  s.max_training_days = 5;
  const BaseConfig b = generate_base_config(s, template_for("gpt3"));
  EXPECT_EQ(b.config.at("trainer.max_steps").as_int(), 71525);
  EXPECT_EQ(b.config.at("model.optim.sched.warmup_steps").as_int(), 107);
  EXPECT_EQ(b.config.at("model.optim.sched.constant_steps").as_int(), 11873);
  EXPECT_EQ(b.config.at("trainer.max_time").as_string(), "4:23:30:00");
  EXPECT_DOUBLE_EQ(*b.estimated_days, 7.75);
  EXPECT_EQ(b.config.at("run.name").as_string(), "gpt3_5b");
  // Written (the reference computes and drops them).
  EXPECT_EQ(b.config.at("model.tensor_model_parallel_size").as_int(), 2);
  EXPECT_EQ(b.config.at("model.pipeline_model_parallel_size").as_int(), 1);
}

TEST(GenerateBaseConfig, RecommendsTheSizeWhenNull) {
  TrainSettings s;
  s.family = Family::kGpt3;
  s.num_nodes = 32;
  s.max_training_days = 10;
  const BaseConfig b = generate_base_config(s, template_for("gpt3"));
  EXPECT_DOUBLE_EQ(b.size_in_b, 12.9);
  EXPECT_EQ(b.size_label, "12.9");
  EXPECT_EQ(b.params.num_layers, 40);
  EXPECT_EQ(b.config.at("run.name").as_string(), "gpt3_12.9b");
  EXPECT_EQ(b.config.at("run.time_limit").as_string(), "10-00:00:00");
}

TEST(GenerateBaseConfig, CustomConfigKeepsItsModel) {
  TrainSettings s;
  s.family = Family::kGpt3;
  s.model_size_in_b = 0.001;
  s.size_label = "0.001";
  s.num_nodes = 1;
  s.gpus_per_node = 2;
  s.max_training_days = 1;
  s.num_tokens_in_b = 0.001;
  s.seq_length = 128;
  s.custom_config = "conf/training/gpt3/tiny.yaml";
  const ConfigNode tiny = config::load_yaml_file("conf/training/gpt3/tiny.yaml");
  const BaseConfig b = generate_base_config(s, tiny);
  EXPECT_EQ(b.batch.gbs, tiny.at("model.global_batch_size").as_int());
  EXPECT_EQ(b.params.num_layers, tiny.at("model.num_layers").as_int());
  EXPECT_EQ(b.config.at("model.hidden_size"), tiny.at("model.hidden_size"));
  EXPECT_EQ(b.config.at("trainer.precision"), tiny.at("trainer.precision"));
  EXPECT_EQ(b.config.at("trainer.devices").as_int(), 2);
  EXPECT_EQ(b.config.at("trainer.max_steps").as_int(),
            std::int64_t(1e6 / (128.0 * double(tiny.at("model.global_batch_size").as_int()))));
}

TEST(TimeFormats, LimitsAndMaxTime) {
  EXPECT_EQ(format_time_limit(6.5), "6-12:00:00");
  EXPECT_EQ(format_max_time(6.5), "6:11:30:00");
  EXPECT_EQ(format_max_time(5), "4:23:30:00");
  // The reference formats minutes as seconds (20 -> 0-0:20:00 reads as 20 seconds in its
  // arithmetic, 90 -> 0-1:30:00); ours are minutes.
  EXPECT_EQ(format_run_time_limit(20), "0-00:20:00");
  EXPECT_EQ(format_run_time_limit(90), "0-01:30:00");
  EXPECT_EQ(format_run_time_limit(1500), "1-01:00:00");
}

TEST(ReadTrainSettings, NamesTheKeyOfABadValue) {
  const ConfigNode root = config::load_yaml_string(R"(
search_config:
  train_settings:
    model_size_in_b: 5
    num_nodes: 0
    gpus_per_node: 8
    gpu_memory_gb: 80
    max_training_days: 5
    limit_search_runs: 100
    output_top_n: 10
    max_steps_per_run: 50
    max_minutes_per_run: 20
    tflops_per_gpu: 140
    num_tokens_in_b: 300
    vocab_size: 51200
    seq_length: 2048
    logs: /tmp/x
)");
  const config::ConfigView v(root);
  try {
    read_train_settings(v.sub("search_config"), "gpt3");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("search_config.train_settings.num_nodes=0"), std::string::npos) << e.what();
  }
  ConfigNode typo = root;
  typo.set_path("search_config.train_settings.num_nodes", ConfigNode::integer(2));
  typo.set_path("search_config.train_settings.tensor_parallel_size", ConfigNode::string("auto"));
  const config::ConfigView v2(typo);
  try {
    read_train_settings(v2.sub("search_config"), "gpt3");
    FAIL() << "expected a ConfigError for the unknown key";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor_parallel_size"), std::string::npos) << e.what();
  }
  ConfigNode ok = typo;
  ok.erase_path("search_config.train_settings.tensor_parallel_size");
  ok.set_path("search_config.train_settings.micro_batch_sizes", config::load_yaml_string("[1, 2]"));
  const config::ConfigView v3(ok);
  const TrainSettings s = read_train_settings(v3.sub("search_config"), "gpt3");
  EXPECT_EQ(s.size_label, "5");
  EXPECT_EQ(s.grid.micro_batch_sizes, (std::vector<int>{1, 2}));
  EXPECT_FALSE(s.grid.tensor_parallel_sizes.has_value());
}

}  // namespace
}  // namespace bignlp::hp
