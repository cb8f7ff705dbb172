// The T5 span-corruption dataset against tests/python/t5_dataset_reference.py (an independent
// numpy implementation of NeMo's T5Dataset) on a generated sentence-split fixture.
#include "bignlp/data/t5_dataset.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/gpt_dataset_splits.h"
#include "bignlp/data/sentencepiece_tokenizer.h"
#include "bignlp/data/wordpiece.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

// A WordPiece vocabulary: specials, words and "##" continuations.
std::string fixture_vocab() {
  std::string s = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < 60; ++i) s += "word" + std::to_string(i) + "\n";
  for (int i = 0; i < 40; ++i) s += "##p" + std::to_string(i) + "\n";
  return s;  // 105 ids: words 5..64, continuations 65..104
}

// Documents of 1..6 sentences of 1..40 tokens (words often followed by continuations), an EOD
// ([SEP] = 3) closing each document; one document with a 600-token sentence among others (skipped)
// and one single-sentence document of 700 tokens (kept, truncated).
void write_fixture(const fs::path& prefix) {
  IndexedDatasetBuilder b(prefix, TokenDType::kUint16);
  std::mt19937 gen(42);
  auto token = [&](bool after_word) -> std::int32_t {
    if (after_word && gen() % 3 == 0) return 65 + static_cast<std::int32_t>(gen() % 40);
    return 5 + static_cast<std::int32_t>(gen() % 60);
  };
  for (int d = 0; d < 120; ++d) {
    int sentences = 1 + static_cast<int>(gen() % 6);
    if (d == 30) sentences = 1;
    std::vector<std::vector<std::int32_t>> doc;
    for (int s = 0; s < sentences; ++s) {
      int len = 1 + static_cast<int>(gen() % 40);
      if (d == 17 && s == 1) len = 600;
      if (d == 30) len = 700;
      std::vector<std::int32_t> t;
      for (int k = 0; k < len; ++k) t.push_back(token(k > 0));
      doc.push_back(t);
    }
    if (d == 17 && sentences < 2) doc.push_back(std::vector<std::int32_t>(600, 7));
    doc.back().push_back(3);
    for (const auto& s : doc) b.add_item(s);
    b.end_document();
  }
  b.finalize();
}

class T5DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file_atomic(dir_.path() / "vocab.txt", fixture_vocab());
    prefix_ = dir_.path() / "fixture_text_sentence";
    write_fixture(prefix_);
    tokenizer_ = std::make_unique<WordPieceTokenizer>(dir_.path() / "vocab.txt", WordPieceOptions{});
    vocab_ = std::make_shared<const T5Vocabulary>(t5_vocabulary(*tokenizer_, 100));
    data_ = std::make_shared<const IndexedDataset>(prefix_);
  }

  // The reference's mapping and samples for `indices`.
  nlohmann::json reference(const T5DatasetOptions& o, std::int64_t doc_begin, std::int64_t doc_end,
                           const std::vector<std::int64_t>& indices) {
    nlohmann::json spec = {{"prefix", prefix_.string()},
                           {"doc_begin", doc_begin},
                           {"doc_end", doc_end},
                           {"num_samples", o.num_samples},
                           {"seq_length", o.seq_length},
                           {"seq_length_dec", o.seq_length_dec},
                           {"seed", o.seed},
                           {"masked_lm_prob", o.masked_lm_prob},
                           {"short_seq_prob", o.short_seq_prob},
                           {"max_ngram_size", o.max_ngram_size},
                           {"mean_ngram_size", o.mean_ngram_size ? nlohmann::json(*o.mean_ngram_size) : nlohmann::json()},
                           {"geometric_dist", o.geometric_dist},
                           {"favor_longer_ngrams", o.favor_longer_ngrams},
                           {"whole_word_masking", o.whole_word_masking},
                           {"vocab_file", (dir_.path() / "vocab.txt").string()},
                           {"cls", vocab_->cls},
                           {"sep", vocab_->sep},
                           {"bos", vocab_->bos},
                           {"eos", vocab_->eos},
                           {"pad", vocab_->pad},
                           {"sentinels", vocab_->sentinels},
                           {"indices", indices}};
    write_file_atomic(dir_.path() / "spec.json", spec.dump());
    int rc = 0;
    const std::string out = testing::run_command(std::string(testing::kPython) + " " +
                                                     testing::source_path("tests/python/t5_dataset_reference.py").string() +
                                                     " " + (dir_.path() / "spec.json").string(),
                                                 &rc);
    EXPECT_EQ(rc, 0) << out;
    return nlohmann::json::parse(out);
  }

  void expect_same(const T5DatasetOptions& o, std::int64_t doc_begin, std::int64_t doc_end) {
    const T5Dataset ds(data_, doc_begin, doc_end, o, vocab_);
    std::vector<std::int64_t> indices;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(ds.size(), 60); ++i) indices.push_back(i);
    const nlohmann::json ref = reference(o, doc_begin, doc_end, indices);
    ASSERT_EQ(static_cast<std::int64_t>(ref["mapping"].size()), ds.size());
    for (std::int64_t i = 0; i < ds.size(); ++i) {
      const auto row = ds.mapping_row(i);
      ASSERT_EQ(ref["mapping"][i], nlohmann::json({row[0], row[1], row[2]})) << "mapping row " << i;
    }
    int with_spans = 0;
    for (const std::int64_t i : indices) {
      const T5Sample s = ds.sample(i);
      const auto& r = ref["samples"][std::to_string(i)];
      ASSERT_EQ(r["enc"].get<std::vector<std::int32_t>>(), s.encoder) << "sample " << i;
      ASSERT_EQ(r["dec"].get<std::vector<std::int32_t>>(), s.decoder) << "sample " << i;
      ASSERT_EQ(r["labels"].get<std::vector<std::int32_t>>(), s.labels) << "sample " << i;
      ASSERT_EQ(r["loss_mask"].get<std::vector<std::int32_t>>(), s.loss_mask) << "sample " << i;
      EXPECT_EQ(s.encoder_length, std::count_if(s.encoder.begin(), s.encoder.end(), [&](auto t) { return t != vocab_->pad; }));
      with_spans += s.decoder_length > 1;
    }
    EXPECT_GT(with_spans, static_cast<int>(indices.size()) / 2);  // the fixture really masks
  }

  TempDir dir_;
  fs::path prefix_;
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
  std::shared_ptr<const T5Vocabulary> vocab_;
  std::shared_ptr<const IndexedDataset> data_;
};

T5DatasetOptions small_options() {
  T5DatasetOptions o;
  o.seq_length = 64;
  o.seq_length_dec = 32;
  o.num_samples = 150;
  o.use_cache = false;
  return o;
}

TEST_F(T5DatasetTest, WholeWordGeometricMatchesReference) {
  T5DatasetOptions o = small_options();
  o.short_seq_prob = 0.1;
  expect_same(o, 0, 100);
}

TEST_F(T5DatasetTest, HarmonicSpanLengthsMatchReference) {
  T5DatasetOptions o = small_options();
  o.geometric_dist = false;
  o.whole_word_masking = false;
  o.seed = 7;
  expect_same(o, 10, 120);
}

TEST_F(T5DatasetTest, FavorLongerNgramsMatchesReference) {
  T5DatasetOptions o = small_options();
  o.geometric_dist = false;
  o.favor_longer_ngrams = true;
  o.seed = 99;
  o.max_ngram_size = 4;
  expect_same(o, 0, 60);
}

TEST_F(T5DatasetTest, MeanNgramSizeAndHigherMaskingMatchReference) {
  T5DatasetOptions o = small_options();
  o.mean_ngram_size = 3.0;
  o.masked_lm_prob = 0.3;
  o.seq_length_dec = 48;
  o.short_seq_prob = 0.25;
  o.seed = 2024;
  o.num_samples = 400;  // several epochs
  expect_same(o, 0, 120);
}

TEST_F(T5DatasetTest, SkipsDocumentsWithLongSentencesAndTruncates) {
  T5DatasetOptions o = small_options();
  const T5Dataset ds(data_, 0, 120, o, vocab_);
  const auto doc17 = data_->doc_idx()[17];
  const auto doc30 = data_->doc_idx()[30];
  bool saw30 = false;
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const auto row = ds.mapping_row(i);
    EXPECT_NE(static_cast<std::int64_t>(row[0]), doc17) << "the document with a 600-token sentence is skipped";
    if (static_cast<std::int64_t>(row[0]) == doc30) {
      saw30 = true;
      const T5Sample s = ds.sample(i);
      // 62 tokens remain after truncation: masked tokens leave the encoder, sentinels enter it.
      int masked = 0, spans = 0;
      for (int k = 1; k < s.decoder_length; ++k) {
        const bool sentinel = s.decoder[k] >= vocab_->base_size;
        spans += sentinel;
        masked += !sentinel;
      }
      EXPECT_EQ(s.encoder_length, 62 - masked + spans);
      EXPECT_GT(masked, 0);
      EXPECT_LE(masked, 9);  // num_to_predict = min(0.15 * 62, max(1, round(0.15 * 62))) = 9
    }
  }
  EXPECT_TRUE(saw30);
}

TEST_F(T5DatasetTest, CacheIsWrittenReadByNumpyAndReused) {
  T5DatasetOptions o = small_options();
  o.use_cache = true;
  o.index_mapping_dir = dir_.path() / "maps";
  o.short_seq_prob = 0.1;
  o.name = "valid";
  const fs::path cache = t5_samples_mapping_path(prefix_, o);
  EXPECT_EQ(cache.filename().string(), "fixture_text_sentence_valid_indexmap_150mns_62msl_0.10ssp_1234s.npy");
  const T5Dataset first(data_, 0, 100, o, vocab_);
  EXPECT_FALSE(first.loaded_from_cache());
  ASSERT_TRUE(fs::exists(cache));
  int rc = 0;
  const std::string out = testing::run_command(
      std::string(testing::kPython) + " -c 'import numpy as np,sys,json; a=np.load(sys.argv[1]); "
                                      "print(json.dumps([str(a.dtype), list(a.shape), a.tolist()]))' " + cache.string(),
      &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j[0], "uint32");
  EXPECT_EQ(j[1][0].get<std::int64_t>(), first.size());
  const auto ref = reference(o, 0, 100, {});
  EXPECT_EQ(j[2], ref["mapping"]);
  const T5Dataset second(data_, 0, 100, o, vocab_);
  EXPECT_TRUE(second.loaded_from_cache());
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(first.sample(i).encoder, second.sample(i).encoder);
}

TEST_F(T5DatasetTest, RefusesUnsupportedAndUnfittingSettings) {
  T5DatasetOptions o = small_options();
  o.permutation = true;
  try {
    o.validate();
    FAIL() << "permutation accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.data.permutation"), std::string::npos);
  }
  o = small_options();
  o.respect_document_boundaries = false;
  EXPECT_THROW(o.validate(), ConfigError);
  o = small_options();
  o.seq_length_dec = 8;  // < 64 * 0.15
  EXPECT_THROW(o.validate(), ConfigError);
  o = small_options();
  o.seq_length_dec = 10;  // passes NeMo's check, but bos + spans + masked tokens do not fit
  o.masked_lm_prob = 0.15;
  const T5Dataset ds(data_, 0, 100, o, vocab_);
  bool threw = false;
  for (std::int64_t i = 0; i < ds.size() && !threw; ++i) {
    try {
      ds.sample(i);
    } catch (const DataError& e) {
      threw = true;
      EXPECT_NE(std::string(e.what()).find("seq_length_dec"), std::string::npos);
    }
  }
  EXPECT_TRUE(threw);
}

TEST_F(T5DatasetTest, WordPieceVocabularyLayout) {
  EXPECT_EQ(vocab_->base_size, 105);
  EXPECT_EQ(vocab_->size, 205);
  EXPECT_EQ(vocab_->cls, 2);
  EXPECT_EQ(vocab_->sep, 3);
  EXPECT_EQ(vocab_->bos, 2);
  EXPECT_EQ(vocab_->eos, 3);
  EXPECT_EQ(vocab_->pad, 0);
  EXPECT_EQ(vocab_->mask, 4);
  EXPECT_EQ(vocab_->sentinels.front(), 105);
  EXPECT_EQ(vocab_->sentinels.back(), 204);
  EXPECT_TRUE(vocab_->is_continuation(70));
  EXPECT_FALSE(vocab_->is_continuation(10));
}

TEST(T5Vocabulary, SentencePieceLayoutAppendsWhatTheModelLacks) {
  TempDir dir;
  std::string text;
  const char* words[] = {"the", "whale", "ship", "sea", "día", "mar", "Meer", "Schiff"};
  for (int i = 0; i < 20000; ++i) text += std::string(words[(i * 7 + i / 13) % 8]) + ((i % 11 == 10) ? ".\n" : " ");
  write_file_atomic(dir.path() / "t.txt", text);
  // SentencePiece's defaults: unk 0, bos 1, eos 2, no pad; plus <extra_id_0> as a user piece.
  train_sentencepiece({{"input", (dir.path() / "t.txt").string()},
                       {"model_prefix", (dir.path() / "sp").string()},
                       {"vocab_size", "32"},
                       {"user_defined_symbols", "<extra_id_0>"},
                       {"minloglevel", "2"}});
  const SentencePieceTokenizer sp(dir.path() / "sp.model");
  const T5Vocabulary v = t5_vocabulary(sp, 3);
  const std::int32_t base = 32;
  EXPECT_EQ(v.base_size, base);
  EXPECT_EQ(v.cls, base);
  EXPECT_EQ(v.sep, base + 1);
  EXPECT_EQ(v.mask, base + 2);
  EXPECT_EQ(v.pad, base + 3);  // no pad in the model: <pad> appended
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.sentinels, (std::vector<std::int32_t>{*sp.token_to_id("<extra_id_0>"), base + 4, base + 5}));
  EXPECT_EQ(v.size, base + 6);
  T5DatasetOptions o;
  EXPECT_THROW(o.validate(&v), ConfigError);  // whole_word_masking with sentencepiece
  o.whole_word_masking = false;
  EXPECT_NO_THROW(o.validate(&v));
}

TEST(Mt5AutoBlend, WeightsFollowLanguageBytesToTheAlpha) {
  TempDir dir;
  const std::vector<std::pair<std::string, int>> files = {{"en_000", 3000}, {"en_001", 1000}, {"de_000", 400}, {"fr_000", 100}};
  for (const auto& [name, tokens] : files) {
    IndexedDatasetBuilder b(dir.path() / (name + "_text_document"), TokenDType::kInt32);
    b.add_item(std::vector<std::int32_t>(static_cast<std::size_t>(tokens), 5));
    b.end_document();
    b.finalize();
  }
  const auto blend = mt5_auto_blend(dir.path(), 0.7);
  ASSERT_EQ(blend.size(), 8u);
  // Bytes: en 16000, de 1600, fr 400 (int32 tokens).
  const double en = std::pow(16000.0 / 18000, 0.7), de = std::pow(1600.0 / 18000, 0.7), fr = std::pow(400.0 / 18000, 0.7);
  const double total = en + de + fr;
  std::map<std::string, double> expect = {{"en_000_text_document", 0.75 * en / total},
                                          {"en_001_text_document", 0.25 * en / total},
                                          {"de_000_text_document", de / total},
                                          {"fr_000_text_document", fr / total}};
  double sum = 0.0;
  for (std::size_t i = 0; i < blend.size(); i += 2) {
    const std::string name = fs::path(blend[i + 1]).filename().string();
    ASSERT_TRUE(expect.count(name)) << name;
    EXPECT_NEAR(std::stod(blend[i]), expect[name], 1e-6) << name;
    sum += std::stod(blend[i]);
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_GT(std::stod(blend[2 * 3]), 0.05);  // fr (last by name: de, en, en, fr) is sampled far above its 2% of bytes
  EXPECT_THROW(mt5_auto_blend(dir.path() / "none", 0.7), IoError);
}

}  // namespace
}  // namespace bignlp::data
