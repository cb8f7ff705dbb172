// Binding of the T5/mT5 training presets' model keys (conf/training/t5/*.yaml, mt5/*.yaml) to the
// "t5" family's config, and refusal of what the model does not build, naming the key.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "bignlp/config/view.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/model/t5_config.h"
#include "bignlp/train/config_binding.h"

namespace bignlp::train {
namespace {

/// A preset with its interpolations replaced by plain values, the tokenizer pointed at a small
/// WordPiece vocabulary, and only the data keys every binding knows kept (the span-corruption
/// keys belong to the dataset's binding).
config::ConfigNode preset(const std::string& name, const TempDir& dir) {
  std::ifstream in(std::string(BIGNLP_SOURCE_DIR) + "/conf/training/" + name + ".yaml");
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::smatch m;
  EXPECT_TRUE(std::regex_search(text, m, std::regex("\n  seq_length: (\\d+)"))) << name;
  const std::string seq = m[1];
  const std::string d = dir.path().string();
  text = std::regex_replace(text, std::regex(R"(\$\{divide_floor:[^}]*\}[^}]*\})"), "0");
  text = std::regex_replace(text, std::regex(R"(\$\{multiply:[^}]*\}[^}]*\}\})"), "1");
  text = std::regex_replace(text, std::regex(R"(\$\{(\.seq_length|training\.model\.seq_length)\})"), seq);
  text = std::regex_replace(text, std::regex(R"(\$\{[a-z_.]*\}(/\$\{[a-z_.]*\})?)"), d);
  config::ConfigNode root = config::load_yaml_string(text);
  // Its ${multiply:TP, PP} became 1 above; the binding checks it against TP x PP, so leave it out.
  root.find_path("exp_manager.checkpoint_callback_params")->erase("model_parallel_size");
  config::ConfigNode* data = root.find_path("model.data");
  std::vector<std::string> drop;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const std::string k = data->key_at(i);
    if (k != "data_prefix" && k != "splits_string" && k != "seq_length" && k != "seq_length_dec" && k != "data_impl" &&
        k != "skip_warmup" && k != "num_workers")
      drop.push_back(k);
  }
  for (const auto& k : drop) data->erase(k);
  if (!data->find("data_prefix") || data->find("data_prefix")->is_null()) data->set("data_prefix", config::ConfigNode::string(d + "/x"));
  config::ConfigNode* tok = root.find_path("model.tokenizer");
  tok->erase("num_sentinel_tokens");
  tok->erase("model");
  tok->set("library", config::ConfigNode::string("megatron"));
  tok->set("type", config::ConfigNode::string("BertWordPieceCase"));
  tok->set("vocab_file", config::ConfigNode::string(d + "/vocab.txt"));
  root.find_path("trainer")->set("accelerator", config::ConfigNode::string("cpu"));
  return root;
}

struct Fixture {
  TempDir dir{"t5-binding"};
  Fixture() {
    std::string vocab = "[PAD]\n";
    for (int i = 1; i < 100; ++i) vocab += "[unused" + std::to_string(i) + "]\n";
    vocab += "[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nof\n";
    write_file_atomic(dir.path() / "vocab.txt", vocab);
  }
};

TEST(T5ConfigBinding, EveryT5AndMt5PresetBindsToTheT5Family) {
  Fixture f;
  for (const char* name : {"t5/220m", "t5/3b", "t5/11b", "t5/23b", "t5/41b", "t5/tiny", "mt5/170m", "mt5/390m", "mt5/3b"}) {
    SCOPED_TRACE(name);
    const config::ConfigNode root = preset(name, f.dir);
    const config::ConfigView cfg(root);
    TrainingConfig tc;
    ASSERT_NO_THROW(tc = bind_training_config(cfg));
    EXPECT_EQ(tc.model_family, "t5");
    ASSERT_FALSE(tc.family_config.is_null());
    const model::T5Config t = tc.family_config.get<model::T5Config>();
    // The T5 layout appends the sentinels (model.tokenizer.num_sentinel_tokens: 100 in every
    // by default) to the tokenizer's 106 ids; the decoder starts from [CLS] (the WordPiece BOS).
    EXPECT_EQ(t.vocab_size, 106 + tc.data.t5.num_sentinel_tokens);
    EXPECT_EQ(t.decoder_start_token_id, 101);
    EXPECT_EQ(t.encoder.num_layers, root.find_path("model.encoder.num_layers")->as_int());
    EXPECT_EQ(t.decoder.hidden_size, root.find_path("model.decoder.hidden_size")->as_int());
    EXPECT_EQ(t.decoder.ffn_hidden_size, root.find_path("model.decoder.ffn_hidden_size")->as_int());
    EXPECT_EQ(t.encoder.activation, root.find_path("model.encoder.activation")->as_string());
    EXPECT_EQ(t.encoder.position_embedding_type, root.find_path("model.encoder.position_embedding_type")->as_string());
    EXPECT_EQ(t.decoder_seq_length, root.find_path("model.data.seq_length_dec")->as_int());
    EXPECT_EQ(t.encoder_seq_length, root.find_path("model.seq_length")->as_int());
    EXPECT_EQ(t.tensor_model_parallel_size, root.find_path("model.tensor_model_parallel_size")->as_int());
    EXPECT_FLOAT_EQ(t.encoder.init_method_std,
                    static_cast<float>(root.find_path("model.encoder.init_method_std")->as_double()));
  }
}

TEST(T5ConfigBinding, PresetValuesReachTheConfigAndUnsupportedKeysAreRefusedByName) {
  Fixture f;
  {
    const config::ConfigNode root = preset("t5/220m", f.dir);
    const TrainingConfig tc = bind_training_config(config::ConfigView(root));
    const model::T5Config t = tc.family_config.get<model::T5Config>();
    EXPECT_EQ(t.encoder.num_layers, 12);
    EXPECT_EQ(t.encoder.ffn_hidden_size, 2048);
    EXPECT_EQ(t.encoder.head_size(), 64);
    EXPECT_EQ(t.encoder.activation, "geglu");
    EXPECT_FLOAT_EQ(t.embedding_init_method_std, 0.015f);
    EXPECT_TRUE(t.share_token_embeddings && t.share_decoder_tokens_head_embeddings && t.tokens_head_bias);
    EXPECT_EQ(t.encoder.activations_checkpoint.granularity, model::CheckpointGranularity::kFull);
    EXPECT_EQ(t.encoder.activations_checkpoint.method, model::CheckpointMethod::kBlock);
    EXPECT_EQ(t.precision, model::Precision::kBf16);
  }
  const auto expect_refused = [&](const std::string& path, config::ConfigNode value, const std::string& needle) {
    config::ConfigNode root = preset("t5/220m", f.dir);
    const auto dot = path.rfind('.');
    root.find_path(path.substr(0, dot))->set(path.substr(dot + 1), std::move(value));
    try {
      bind_training_config(config::ConfigView(root));
      FAIL() << path << " must be refused";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_refused("model.encoder.transformer_block_type", config::ConfigNode::string("post_ln"),
                 "model.encoder.transformer_block_type");
  expect_refused("model.decoder.ffn_dropout", config::ConfigNode::floating(0.1), "model.decoder.ffn_dropout");
  expect_refused("model.decoder.activation", config::ConfigNode::string("tanh"), "model.decoder.activation");
  expect_refused("model.encoder.normalization", config::ConfigNode::string("batchnorm"), "model.encoder.normalization");
  expect_refused("model.decoder.hidden_size", config::ConfigNode::integer(512), "model.decoder.hidden_size");
  expect_refused("model.label_smoothing", config::ConfigNode::floating(0.1), "model.label_smoothing");
  expect_refused("model.encoder.no_such_key", config::ConfigNode::integer(1), "no_such_key");
  expect_refused("model.no_such_key", config::ConfigNode::integer(1), "no_such_key");
}

}  // namespace
}  // namespace bignlp::train

namespace bignlp::train {
namespace {

// bind_training_config checks the same worker-key schema the launcher checks (config/worker_keys.h).
TEST(TrainingConfigBinding, TheWorkerChecksTheLaunchersKeySchema) {
  Fixture f;
  config::ConfigNode root = preset("t5/220m", f.dir);
  root.find_path("trainer")->set("max_steps", config::ConfigNode::string("abc"));
  try {
    bind_training_config(config::ConfigView(root));
    FAIL() << "bound trainer.max_steps=abc";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("trainer.max_steps=abc"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("must be an integer >= 1"), std::string::npos) << e.what();
  }
  root.find_path("trainer")->set("max_steps", config::ConfigNode::integer(100));
  root.find_path("model.optim.sched")->set("warmup_steps", config::ConfigNode::integer(90));
  root.find_path("model.optim.sched")->set("constant_steps", config::ConfigNode::integer(20));
  root.find_path("model.optim.sched")->erase("warmup_ratio");
  root.find_path("model.optim.sched")->erase("constant_ratio");
  try {
    bind_training_config(config::ConfigView(root));
    FAIL() << "bound 110 warm-up + constant steps in 100";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("= 110 warm-up + constant steps exceed trainer.max_steps=100"),
              std::string::npos)
        << e.what();
  }
}

// The tuning stages (prompt learning) bind trainer/exp_manager/optim with trainer.max_epochs as
// their length; pre-training runs for trainer.max_steps and refuses max_epochs by name.
TEST(TrainingConfigBinding, TuningSectionsTakeMaxEpochsPreTrainingRefusesIt) {
  Fixture f;
  config::ConfigNode root = preset("t5/220m", f.dir);
  root.find_path("trainer")->set("max_epochs", config::ConfigNode::integer(4));
  TrainingConfig c;
  EXPECT_NO_THROW(bind_trainer_exp_manager_optim(config::ConfigView(root), c));
  try {
    bind_training_config(config::ConfigView(root));
    FAIL() << "pre-training bound trainer.max_epochs=4";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("trainer.max_epochs: 4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bignlp::train
