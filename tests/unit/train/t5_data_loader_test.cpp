// The T5 batch sources: the loader's batch contract, the factory over a config (blends, the mT5
// auto-blend, bad keys), the binding of the T5 presets' model.data keys, and the trainer taking the
// T5 sources when model_family is "t5".
#include "bignlp/train/t5_data_loader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/train/config_binding.h"
#include "bignlp/train/trainer.h"
#include "toy_decoder_family.h"

namespace bignlp::train {
namespace {

namespace fs = std::filesystem;

std::string vocab_text() {
  std::string s = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < 40; ++i) s += "w" + std::to_string(i) + "\n";
  for (int i = 0; i < 10; ++i) s += "##x" + std::to_string(i) + "\n";
  return s;  // 55 ids
}

// `docs` documents of 1..4 sentences (tokens 5..54), each closed by [SEP].
void write_dataset(const fs::path& prefix, int docs, unsigned seed) {
  data::IndexedDatasetBuilder b(prefix, data::TokenDType::kUint16);
  std::mt19937 gen(seed);
  for (int d = 0; d < docs; ++d) {
    const int sentences = 1 + static_cast<int>(gen() % 4);
    for (int s = 0; s < sentences; ++s) {
      std::vector<std::int32_t> t(1 + gen() % 12);
      for (auto& x : t) x = 5 + static_cast<std::int32_t>(gen() % 50);
      if (s + 1 == sentences) t.push_back(3);
      b.add_item(t);
    }
    b.end_document();
  }
  b.finalize();
}

class T5SourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file_atomic(dir_.path() / "vocab.txt", vocab_text());
    write_dataset(dir_.path() / "a_text_sentence", 80, 1);
    write_dataset(dir_.path() / "b_text_sentence", 50, 2);
  }
  TrainingConfig config() const {
    TrainingConfig c;
    c.model_family = "t5";
    c.micro_batch_size = 2;
    c.global_batch_size = 4;
    c.max_steps = 10;
    c.val_check_interval = 5;
    c.limit_val_batches = 1;
    c.tokenizer = {{"library", "megatron"}, {"type", "BertWordPieceCase"}, {"vocab_file", (dir_.path() / "vocab.txt").string()}};
    c.data.data_prefix = {(dir_.path() / "a_text_sentence").string()};
    c.data.splits_string = "90,10,0";
    c.data.index_mapping_dir = dir_.path() / "maps";
    c.data.t5.seq_length = 24;
    c.data.t5.seq_length_dec = 16;
    c.data.t5.num_sentinel_tokens = 20;
    return c;
  }
  TempDir dir_{"t5-sources"};
};

TEST_F(T5SourcesTest, LoaderBatchesFollowTheContract) {
  const TrainingConfig c = config();
  const T5BatchSources src = build_t5_batch_sources(c);
  ASSERT_TRUE(src.train && src.valid);
  EXPECT_EQ(src.vocabulary->size, 75);
  EXPECT_GE(src.train->size(), 40);  // max_steps x global_batch_size
  model::Batch b = src.train->batch(6);
  ASSERT_EQ(b.tokens.shape(), (Shape{2, 16}));
  ASSERT_EQ(b.labels.shape(), (Shape{2, 16}));
  ASSERT_EQ(b.loss_mask.shape(), (Shape{2, 16}));
  ASSERT_EQ(b.encoder_tokens.shape(), (Shape{2, 24}));
  ASSERT_EQ(b.encoder_lengths.shape(), (Shape{2}));
  ASSERT_EQ(b.decoder_lengths.shape(), (Shape{2}));
  EXPECT_EQ(b.tokens.dtype(), DType::kI32);
  EXPECT_EQ(b.loss_mask.dtype(), DType::kF32);
  EXPECT_EQ(b.encoder_tokens.dtype(), DType::kI32);
  EXPECT_FALSE(b.position_ids.defined());
  const auto* tok = static_cast<const std::int32_t*>(b.tokens.raw());
  const auto* lab = static_cast<const std::int32_t*>(b.labels.raw());
  const auto* mask = static_cast<const float*>(b.loss_mask.raw());
  const auto* enc = static_cast<const std::int32_t*>(b.encoder_tokens.raw());
  const auto* el = static_cast<const std::int32_t*>(b.encoder_lengths.raw());
  const auto* dl = static_cast<const std::int32_t*>(b.decoder_lengths.raw());
  for (int r = 0; r < 2; ++r) {
    // Row r is dataset sample 6 + r, with Megatron's -1 label padding replaced by pad.
    const data::T5Sample s = src.datasets.train->sample(6 + r);
    EXPECT_EQ(el[r], s.encoder_length);
    EXPECT_EQ(dl[r], s.decoder_length);
    EXPECT_EQ(tok[r * 16], src.vocabulary->bos);
    for (int t = 0; t < 24; ++t) {
      EXPECT_EQ(enc[r * 24 + t], s.encoder[static_cast<std::size_t>(t)]);
      EXPECT_EQ(enc[r * 24 + t] != 0, t < el[r]) << "padding only at the end";
    }
    for (int t = 0; t < 16; ++t) {
      EXPECT_EQ(tok[r * 16 + t], s.decoder[static_cast<std::size_t>(t)]);
      EXPECT_EQ(mask[r * 16 + t], t < dl[r] ? 1.0f : 0.0f);
      EXPECT_EQ(lab[r * 16 + t], t < dl[r] ? s.labels[static_cast<std::size_t>(t)] : 0);
      // Teacher forcing: the decoder input is the labels shifted right by one (bos first).
      if (t + 1 < dl[r]) {
        EXPECT_EQ(tok[r * 16 + t + 1], lab[r * 16 + t]);
      }
    }
    EXPECT_EQ(lab[r * 16 + dl[r] - 1], src.vocabulary->eos);
  }
  EXPECT_THROW(src.train->batch(src.train->size() - 1), DataError);
}

TEST_F(T5SourcesTest, BlendsWeightedPrefixesAndTheMt5AutoBlend) {
  TrainingConfig c = config();
  c.data.data_prefix = {"0.7", (dir_.path() / "a_text_sentence").string(), "0.3", (dir_.path() / "b_text_sentence").string()};
  const T5BatchSources blended = build_t5_batch_sources(c);
  // NeMo: the blend holds the sum of the per-dataset requests ceil(40 * w * 1.005).
  EXPECT_EQ(blended.train->size(), 29 + 13);
  // data_prefix null: every dataset of run.preprocessed_dir, weighted by language bytes ^ alpha.
  c.data.data_prefix.clear();
  c.data.t5.preprocessed_dir = dir_.path();
  c.data.t5.blending_alpha = 0.5;
  const T5BatchSources auto_blend = build_t5_batch_sources(c);
  EXPECT_GE(auto_blend.train->size(), 40);
  auto_blend.train->batch(0);
  c.data.t5.preprocessed_dir = dir_.path() / "missing";
  EXPECT_THROW(build_t5_batch_sources(c), IoError);
  c.data.t5.preprocessed_dir.clear();
  EXPECT_THROW(build_t5_batch_sources(c), ConfigError);
}

TEST_F(T5SourcesTest, RefusesSettingsTheDatasetDoesNotHave) {
  TrainingConfig c = config();
  c.data.t5.permutation = true;
  EXPECT_THROW(build_t5_batch_sources(c), ConfigError);
  c = config();
  c.tokenizer = {{"library", "megatron"}, {"type", "GPT2BPETokenizer"}};
  EXPECT_THROW(build_t5_batch_sources(c), ConfigError);
}

// model.data of a T5 preset, bound as bignlp-train binds it.
config::ConfigNode t5_node(const std::string& extra_data) {
  const std::string yaml = std::string(
                               "run:\n  preprocessed_dir: /nowhere\n  blending_alpha: 0.5\n"
                               "model:\n  tokenizer:\n    num_sentinel_tokens: 50\n"
                               "  data:\n    data_impl: mmap\n    splits_string: \"9,1,0\"\n    seq_length: 128\n"
                               "    seq_length_dec: 32\n    skip_warmup: True\n    num_workers: 0\n"
                               "    dataloader_type: single\n    masked_lm_prob: 0.2\n    dataset_type: t5\n"
                               "    short_seq_prob: 0.1\n    max_ngram_size: 5\n    mean_ngram_size: 3\n"
                               "    geometric_dist: False\n    permutation: False\n    whole_word_masking: False\n"
                               "    favor_longer_ngrams: True\n    respect_document_boundaries: True\n"
                               "    index_mapping_dir: /tmp/maps\n    data_prefix: null\n") +
                           extra_data;
  return config::load_yaml_string(yaml);
}

TEST(T5DataBinding, BindsEveryKeyOfTheT5Presets) {
  const config::ConfigNode root = t5_node("");
  const config::ConfigView cfg(root);
  TrainingConfig c;
  bind_t5_data_config(cfg, c);
  EXPECT_NO_THROW(cfg.sub("model").check_all_used("training"));
  const T5DataConfig& t = c.data.t5;
  EXPECT_EQ(t.seq_length, 128);
  EXPECT_EQ(t.seq_length_dec, 32);
  EXPECT_DOUBLE_EQ(t.masked_lm_prob, 0.2);
  EXPECT_DOUBLE_EQ(t.short_seq_prob, 0.1);
  EXPECT_EQ(t.max_ngram_size, 5);
  EXPECT_EQ(t.mean_ngram_size, 3.0);
  EXPECT_FALSE(t.geometric_dist);
  EXPECT_FALSE(t.whole_word_masking);
  EXPECT_TRUE(t.favor_longer_ngrams);
  EXPECT_EQ(t.num_sentinel_tokens, 50);
  EXPECT_EQ(c.data.splits_string, "9,1,0");
  EXPECT_EQ(c.data.index_mapping_dir, "/tmp/maps");
  EXPECT_TRUE(c.data.data_prefix.empty());
  EXPECT_EQ(t.preprocessed_dir, "/nowhere");
  EXPECT_DOUBLE_EQ(t.blending_alpha, 0.5);
}

TEST(T5DataBinding, UnknownAndUnsupportedKeysAreRefused) {
  {
    const config::ConfigNode root = t5_node("    masked_lm_probability: 0.3\n");
    const config::ConfigView cfg(root);
    TrainingConfig c;
    bind_t5_data_config(cfg, c);
    try {
      cfg.sub("model").check_all_used("training");
      FAIL() << "an unknown key was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("masked_lm_probability"), std::string::npos) << e.what();
    }
  }
  for (const std::string bad : {"permutation: True", "dataset_type: ul2", "respect_document_boundaries: False",
                                "dataloader_type: cyclic", "seq_length_dec: 8"}) {
    std::string yaml = config::to_yaml(t5_node(""));
    const std::string key = bad.substr(0, bad.find(':'));
    const auto at = yaml.find("    " + key + ":");
    ASSERT_NE(at, std::string::npos) << key;
    yaml.replace(at, yaml.find('\n', at) - at, "    " + bad);
    const config::ConfigNode root = config::load_yaml_string(yaml);
    const config::ConfigView cfg(root);
    TrainingConfig c;
    try {
      bind_t5_data_config(cfg, c);
      FAIL() << bad << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("model.data." + key), std::string::npos) << e.what();
    }
  }
}

// Every shipped T5 and mT5 training preset: all of its model.data keys are bound (none unused),
// and the values are the preset's.
TEST(T5DataBinding, EveryT5AndMt5PresetBinds) {
  int presets = 0;
  for (const char* family : {"t5", "mt5"}) {
    for (const auto& entry : fs::directory_iterator(fs::path(BIGNLP_SOURCE_DIR) / "conf" / "training" / family)) {
      config::ConfigNode root = config::ConfigNode::dict();
      root.set("data_dir", config::ConfigNode::string("/d"));
      root.set("base_results_dir", config::ConfigNode::string("/r"));
      root.set("training", config::load_yaml_file(entry.path()));
      const config::ConfigView top(root);
      const config::ConfigView cfg = top.sub("training");
      TrainingConfig c;
      ASSERT_NO_THROW(bind_t5_data_config(cfg, c)) << entry.path();
      EXPECT_TRUE(cfg.sub("model.data").unused_keys().empty()) << entry.path();
      const bool mt5 = std::string(family) == "mt5";
      EXPECT_EQ(c.data.t5.seq_length, cfg.get<std::int64_t>("model.seq_length")) << entry.path();
      EXPECT_EQ(c.data.t5.whole_word_masking, !mt5) << entry.path();
      EXPECT_EQ(c.data.t5.num_sentinel_tokens, 100);
      if (mt5) {
        EXPECT_TRUE(c.data.data_prefix.empty()) << entry.path();
        EXPECT_EQ(c.data.t5.preprocessed_dir.string().rfind("/d/", 0), 0u) << entry.path();
      } else {
        EXPECT_FALSE(c.data.data_prefix.empty()) << entry.path();
      }
      ++presets;
    }
  }
  EXPECT_GE(presets, 10);
}

// The trainer takes the T5 sources for model_family "t5": the toy decoder family (as a model
// factory) trains on the T5 decoder side, and the T5 samples-mapping caches appear, not GPT's.
TEST_F(T5SourcesTest, TrainerTakesTheT5SourcesForTheT5Family) {
  CpuAllocator alloc;
  ops::OpContext ctx = ops::OpContext::cpu();
  ctx.allocator = &alloc;
  const Logger log = Logger::capturing(LogLevel::kInfo);
  TrainingConfig c = config();
  c.model.vocab_size = 75;
  c.model.make_vocab_size_divisible_by = 8;
  c.model.seq_length = 16;
  c.model.num_layers = 1;
  c.model.hidden_size = 32;
  c.model.num_attention_heads = 4;
  c.model.hidden_dropout = 0.0f;
  c.model.attention_dropout = 0.0f;
  c.optim.lr = 1e-2;
  c.exp_manager.explicit_log_dir = dir_.path() / "results";
  c.exp_manager.save_top_k = 1;
  const model::ModelFamilyRegistry registry = test_support::registry_with_toy_family();
  TrainerParts parts;
  parts.model = [&](const parallel::ParallelContext& pc) { return registry.build("toy-llama", nlohmann::json(c.model), ctx, pc); };
  std::FILE* out = std::tmpfile();
  Trainer trainer(c, log, ctx, out, parts);
  const TrainResult r = trainer.fit();
  std::fclose(out);
  EXPECT_EQ(r.global_step, 10);
  EXPECT_EQ(r.consumed_samples, 40);
  std::vector<std::string> caches;
  for (const auto& e : fs::directory_iterator(dir_.path() / "maps")) caches.push_back(e.path().filename().string());
  std::sort(caches.begin(), caches.end());
  // Validation: (10 // 5 + 1) x 1 x 4 = 12 samples.
  EXPECT_EQ(caches, (std::vector<std::string>{"a_text_sentence_train_indexmap_40mns_22msl_0.00ssp_1234s.npy",
                                              "a_text_sentence_valid_indexmap_12mns_22msl_0.00ssp_1234s.npy"}));
  ASSERT_EQ(r.val_losses.size(), 2u);
}

}  // namespace
}  // namespace bignlp::train
