// The T5 and mT5 demo data preparations end to end: the launcher runs data_preparation=t5/demo and
// mt5/demo (local executor, bignlp-preprocess), and the T5 dataset reads what they wrote: samples
// equal to the numpy reference (tests/python/t5_dataset_reference.py), whole words masked whole,
// and every sample's encoder + decoder put back together is the text it came from.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>

#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/dataset_split.h"
#include "bignlp/data/gpt_dataset_splits.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/sentencepiece_tokenizer.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/wordpiece.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

int launch(const std::string& overrides, std::string* out) {
  int rc = -1;
  *out = testing::run_command(std::string(BIGNLP_BIN_DIR) + "/bignlp stages=[data_preparation] cluster_type=local bin_dir=" +
                                  BIGNLP_BIN_DIR + " " + overrides + " 2>&1",
                              &rc);
  return rc;
}

// The original tokens of a sample: the encoder with each sentinel replaced by its span (from the labels).
std::vector<std::int32_t> reassemble(const T5Sample& s, const T5Vocabulary& v) {
  std::map<std::int32_t, std::vector<std::int32_t>> spans;
  std::int32_t current = -1;
  for (std::int32_t k = 0; k + 1 < s.decoder_length; ++k) {  // labels: sentinel, tokens, ..., eos
    const std::int32_t t = s.labels[static_cast<std::size_t>(k)];
    if (std::find(v.sentinels.begin(), v.sentinels.end(), t) != v.sentinels.end()) {
      current = t;
      spans[t];
    } else {
      spans[current].push_back(t);
    }
  }
  std::vector<std::int32_t> out;
  for (std::int32_t k = 0; k < s.encoder_length; ++k) {
    const std::int32_t t = s.encoder[static_cast<std::size_t>(k)];
    if (spans.count(t)) {
      out.insert(out.end(), spans[t].begin(), spans[t].end());
    } else {
      out.push_back(t);
    }
  }
  return out;
}

nlohmann::json reference(const fs::path& work, const fs::path& prefix, std::int64_t doc_begin, std::int64_t doc_end,
                         const T5DatasetOptions& o, const T5Vocabulary& v, const std::string& vocab_file, int count) {
  std::vector<int> indices;
  for (int i = 0; i < count; ++i) indices.push_back(i);
  const nlohmann::json spec = {{"prefix", prefix.string()}, {"doc_begin", doc_begin}, {"doc_end", doc_end},
                               {"num_samples", o.num_samples}, {"seq_length", o.seq_length},
                               {"seq_length_dec", o.seq_length_dec}, {"seed", o.seed},
                               {"masked_lm_prob", o.masked_lm_prob}, {"short_seq_prob", o.short_seq_prob},
                               {"max_ngram_size", o.max_ngram_size}, {"mean_ngram_size", nullptr},
                               {"geometric_dist", o.geometric_dist}, {"favor_longer_ngrams", o.favor_longer_ngrams},
                               {"whole_word_masking", o.whole_word_masking},
                               {"vocab_file", vocab_file.empty() ? nlohmann::json() : nlohmann::json(vocab_file)},
                               {"cls", v.cls}, {"sep", v.sep}, {"bos", v.bos}, {"eos", v.eos}, {"pad", v.pad},
                               {"sentinels", v.sentinels}, {"indices", indices}};
  write_file_atomic(work / "spec.json", spec.dump());
  int rc = 0;
  const std::string out = testing::run_command(std::string(testing::kPython) + " " +
                                                   testing::source_path("tests/python/t5_dataset_reference.py").string() +
                                                   " " + (work / "spec.json").string(),
                                               &rc);
  EXPECT_EQ(rc, 0) << out;
  return nlohmann::json::parse(out);
}

void expect_reference(const T5Dataset& ds, const nlohmann::json& ref, int count) {
  ASSERT_EQ(static_cast<std::int64_t>(ref["mapping"].size()), ds.size());
  for (int i = 0; i < count; ++i) {
    const T5Sample s = ds.sample(i);
    const auto& r = ref["samples"][std::to_string(i)];
    ASSERT_EQ(r["enc"].get<std::vector<std::int32_t>>(), s.encoder) << i;
    ASSERT_EQ(r["dec"].get<std::vector<std::int32_t>>(), s.decoder) << i;
    ASSERT_EQ(r["labels"].get<std::vector<std::int32_t>>(), s.labels) << i;
  }
}

std::string squeeze_spaces(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  return out;
}

TEST(T5Demo, Mt5DemoIsWhatTheT5DatasetReads) {
  TempDir dir;
  const fs::path data = dir.path() / "data";
  std::string out;
  ASSERT_EQ(launch(fmt::format("data_preparation=mt5/demo base_results_dir={} data_dir={} bignlp_path={}",
                               (dir.path() / "results").string(), data.string(), BIGNLP_SOURCE_DIR),
                   &out),
            0)
      << out;
  const fs::path pre = data / "mc4_demo" / "preprocessed";
  const SentencePieceTokenizer sp(data / "mc4_demo" / "bpe" / "mt5_demo_tokenizer.model");
  const auto vocab = std::make_shared<const T5Vocabulary>(t5_vocabulary(sp, 100));
  // mT5's SentencePiece layout: pad 0 and eos 1 from the model, <cls> <sep> <mask> <bos> appended.
  EXPECT_EQ(vocab->pad, 0);
  EXPECT_EQ(vocab->eos, 1);
  EXPECT_EQ(vocab->bos, 403);
  EXPECT_EQ(vocab->sentinels.front(), 404);
  EXPECT_EQ(vocab->size, 504);
  std::string all_text;
  for (const char* lang : {"en", "de", "fr", "es"}) {
    const IndexedDataset ds(pre / fmt::format("{}_000_text_document", lang));
    EXPECT_EQ(ds.num_sequences(), ds.num_documents()) << "one sequence per document, as mC4";
    EXPECT_GE(ds.num_documents(), 6u) << lang;
    all_text += squeeze_spaces(read_file(testing::source_path(fmt::format("tests/data/mc4_demo/{}_000.txt", lang)))) + " ";
  }
  // The language blend of training=mt5/tiny (data_prefix null).
  const std::vector<std::string> blend = mt5_auto_blend(pre, 0.7);
  ASSERT_EQ(blend.size(), 8u);
  T5DatasetOptions o;
  o.seq_length = 128;
  o.seq_length_dec = 48;
  o.whole_word_masking = false;
  o.index_mapping_dir = dir.path() / "maps";
  const T5DatasetSplits splits = build_t5_dataset_splits(parse_data_prefix(blend), "90,5,5", {200, 20, 0}, o, vocab);
  ASSERT_TRUE(splits.train && splits.valid);
  double wsum = 0.0;
  for (std::size_t i = 0; i < blend.size(); i += 2) wsum += std::stod(blend[i]);
  std::int64_t requests = 0;
  for (std::size_t i = 0; i < blend.size(); i += 2) requests += static_cast<std::int64_t>(std::ceil(200 * std::stod(blend[i]) / wsum * 1.005));
  EXPECT_EQ(splits.train->size(), requests);  // NeMo: the sum of ceil(200 * w * 1.005)
  std::set<std::size_t> lengths;
  for (std::int64_t i = 0; i < splits.train->size(); ++i) {
    const T5Sample s = splits.train->sample(i);
    const std::vector<std::int32_t> original = reassemble(s, *vocab);
    ASSERT_LE(original.size(), 126u);
    lengths.insert(original.size());
    const std::string text = squeeze_spaces(sp.decode(original));
    ASSERT_NE(all_text.find(text), std::string::npos) << "sample " << i << " is not demo text: " << text;
  }
  EXPECT_GT(lengths.size(), 5u);
  // One language's split against the reference.
  T5DatasetOptions de = o;
  de.name = "train";
  de.num_samples = 30;
  de.use_cache = false;
  const auto de_data = std::make_shared<const IndexedDataset>(pre / "de_000_text_document");
  const auto bounds = train_valid_test_split("90,5,5", static_cast<std::int64_t>(de_data->num_documents()));
  const T5Dataset ds(de_data, bounds[0], bounds[1], de, vocab);
  expect_reference(ds, reference(dir.path(), pre / "de_000_text_document", bounds[0], bounds[1], de, *vocab, "", 30), 30);
}

TEST(T5Demo, T5DemoSplitsSentencesAndMasksWholeWords) {
  const fs::path bert = testing::source_path("data/bert/bert-base-uncased-vocab.txt");
  const fs::path moby = testing::source_path("data/demo/raw/moby_dick.txt");
  if (!fs::exists(bert) || !fs::exists(moby)) GTEST_SKIP() << "demo data not found: run scripts/fetch_demo_data.sh";
  TempDir dir;
  const fs::path data = dir.path() / "data";
  // The first chapters of the corpus keep the test short.
  write_file_atomic(data / "demo" / "raw" / "moby_dick.txt", read_file(moby).substr(0, 60000));
  fs::create_directories(data / "bert");
  fs::copy_file(bert, data / "bert" / "bert-base-uncased-vocab.txt");
  std::string out;
  ASSERT_EQ(launch(fmt::format("data_preparation=t5/demo base_results_dir={} data_dir={}", (dir.path() / "results").string(),
                               data.string()),
                   &out),
            0)
      << out;
  const fs::path prefix = data / "demo" / "my-t5_demo_text_sentence";
  const auto indexed = std::make_shared<const IndexedDataset>(prefix);
  EXPECT_GT(indexed->num_sequences(), 2 * indexed->num_documents()) << "sentence-split";
  const WordPieceTokenizer wp(data / "bert" / "bert-base-uncased-vocab.txt", WordPieceOptions{.lower_case = true});
  const auto vocab = std::make_shared<const T5Vocabulary>(t5_vocabulary(wp, 100));
  EXPECT_EQ(vocab->sentinels.front(), 30522);
  for (std::size_t d = 0; d < indexed->num_documents(); ++d) {
    const auto last = static_cast<std::size_t>(indexed->doc_idx()[d + 1] - 1);
    ASSERT_EQ(indexed->get(last).back(), vocab->eos) << "document " << d << " ends with [SEP]";
  }
  T5DatasetOptions o;
  o.seq_length = 128;
  o.seq_length_dec = 48;
  o.num_samples = 120;
  o.short_seq_prob = 0.1;
  o.use_cache = false;
  const auto bounds = train_valid_test_split("90,5,5", static_cast<std::int64_t>(indexed->num_documents()));
  const T5Dataset ds(indexed, bounds[0], bounds[1], o, vocab);
  expect_reference(ds, reference(dir.path(), prefix, bounds[0], bounds[1], o, *vocab, (data / "bert" / "bert-base-uncased-vocab.txt").string(), 60), 60);
  int multi_sentence = 0, continuation_spans = 0;
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const auto row = ds.mapping_row(i);
    multi_sentence += row[1] - row[0] > 1;
    const T5Sample s = ds.sample(i);
    // A whole word is masked whole: no span starts with a "##" piece, and the token after a
    // sentinel in the encoder never continues the masked word.
    for (std::int32_t k = 0; k < s.decoder_length; ++k) {
      const std::int32_t t = s.decoder[static_cast<std::size_t>(k)];
      if (k > 0 && t >= 30522 && k + 1 < s.decoder_length) {
        EXPECT_FALSE(vocab->is_continuation(s.decoder[static_cast<std::size_t>(k + 1)])) << "sample " << i;
      }
    }
    for (std::int32_t k = 0; k + 1 < s.encoder_length; ++k) {
      if (s.encoder[static_cast<std::size_t>(k)] >= 30522) {
        EXPECT_FALSE(vocab->is_continuation(s.encoder[static_cast<std::size_t>(k + 1)])) << "sample " << i;
      }
    }
    const auto original = reassemble(s, *vocab);
    for (std::size_t k = 1; k < original.size(); ++k) continuation_spans += vocab->is_continuation(original[k]);
    // The sample is the first target-length tokens of its sentences.
    std::vector<std::int32_t> expect;
    for (auto sent = row[0]; sent < row[1]; ++sent) {
      for (const auto t : indexed->get(static_cast<std::size_t>(sent))) expect.push_back(static_cast<std::int32_t>(t));
    }
    expect.resize(std::min<std::size_t>(expect.size(), static_cast<std::size_t>(row[2])));
    ASSERT_EQ(original, expect) << "sample " << i;
  }
  EXPECT_GT(multi_sentence, ds.size() / 4) << "samples pack several sentences";
  EXPECT_GT(continuation_spans, 0) << "the text has words of several pieces";
}

}  // namespace
}  // namespace bignlp::data
