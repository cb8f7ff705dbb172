// The text-to-text dataset (tuning.md §6.3: BOS/EOS, tail truncation to max - 1, strip, zip) and
// its batches (collate padding, loss mask, lengths; the epoch order of a training run).
#include "bignlp/finetune/seq2seq_batches.h"

#include <gtest/gtest.h>

#include <set>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/t5_dataset.h"
#include "bignlp/data/wordpiece.h"

namespace bignlp::finetune {
namespace {

namespace fs = std::filesystem;

class Seq2SeqTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file_atomic(dir_.path() / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\nf\n");
    tokenizer_ = std::make_unique<data::WordPieceTokenizer>(dir_.path() / "vocab.txt", data::WordPieceOptions{});
    vocab_ = data::t5_vocabulary(*tokenizer_, 2);
  }
  std::shared_ptr<const data::SequenceToSequenceDataset> dataset(const std::string& src, const std::string& tgt,
                                                                 std::int64_t max_src, std::int64_t max_tgt) {
    write_file_atomic(dir_.path() / "src.txt", src);
    write_file_atomic(dir_.path() / "tgt.txt", tgt);
    data::SequenceToSequenceOptions o;
    o.max_src_seq_length = max_src;
    o.max_tgt_seq_length = max_tgt;
    o.bos = vocab_.bos;
    o.eos = vocab_.eos;
    return std::make_shared<const data::SequenceToSequenceDataset>(dir_.path() / "src.txt", dir_.path() / "tgt.txt",
                                                                   *tokenizer_, o);
  }
  TempDir dir_;
  std::unique_ptr<data::WordPieceTokenizer> tokenizer_;
  data::T5Vocabulary vocab_;
};

using Ids = std::vector<std::int32_t>;

TEST_F(Seq2SeqTest, BosEosTailTruncationStripAndZip) {
  // a=5 .. f=10; CRLF and a lone CR end lines too; the target file is one line shorter.
  const auto ds = dataset("  a b c \r\nd\re f a b c d\n", "b\r\n c \n", 5, 3);
  ASSERT_EQ(ds->size(), 2);
  const std::int32_t bos = vocab_.bos, eos = vocab_.eos;
  EXPECT_EQ(ds->src(0), (Ids{bos, 5, 6, 7, eos}));  // exactly max: kept whole
  EXPECT_EQ(ds->src(1), (Ids{bos, 8, eos}));
  EXPECT_EQ(ds->tgt(0), (Ids{bos, 6, eos}));
  EXPECT_EQ(ds->src_text(0), "a b c");
  EXPECT_EQ(ds->tgt_text(1), "c");
  // Longer than max: the last max - 1 tokens stay (BOS and the head dropped, EOS kept).
  const auto long_ds = dataset("e f a b c d\n", "a b c d e f\n", 5, 4);
  EXPECT_EQ(long_ds->src(0), (Ids{6, 7, 8, eos}));
  EXPECT_EQ(long_ds->tgt(0), (Ids{9, 10, eos}));
  EXPECT_EQ(data::seq2seq_sequence({5, 6, 7, 8}, bos, eos, 6), (Ids{bos, 5, 6, 7, 8, eos}));
  EXPECT_EQ(data::seq2seq_sequence({5, 6, 7, 8}, bos, eos, 5), (Ids{6, 7, 8, eos}));
}

TEST_F(Seq2SeqTest, CollatePadsToTheLongestRowWithMaskAndLengths) {
  const auto ds = dataset("a b c\nd\n", "e\nf a b\n", 16, 16);
  Seq2SeqBatchSource source(ds, 2, 2, vocab_.pad, false, 0, 1);
  const model::Batch b = source.batch(0);
  ASSERT_EQ(b.encoder_tokens.shape(), (Shape{2, 5}));
  ASSERT_EQ(b.tokens.shape(), (Shape{2, 4}));
  const auto* enc = b.encoder_tokens.data<std::int32_t>();
  const auto* dec = b.tokens.data<std::int32_t>();
  const auto* lab = b.labels.data<std::int32_t>();
  const auto* mask = b.loss_mask.data<float>();
  const std::int32_t bos = vocab_.bos, eos = vocab_.eos, pad = vocab_.pad;
  EXPECT_EQ(Ids(enc, enc + 10), (Ids{bos, 5, 6, 7, eos, bos, 8, eos, pad, pad}));
  EXPECT_EQ(Ids(dec, dec + 8), (Ids{bos, 9, pad, pad, bos, 10, 5, 6}));
  EXPECT_EQ(Ids(lab, lab + 8), (Ids{9, eos, pad, pad, 10, 5, 6, eos}));
  EXPECT_EQ(std::vector<float>(mask, mask + 8), (std::vector<float>{1, 1, 0, 0, 1, 1, 1, 1}));
  const auto* el = b.encoder_lengths.data<std::int32_t>();
  const auto* dl = b.decoder_lengths.data<std::int32_t>();
  EXPECT_EQ(Ids(el, el + 2), (Ids{5, 3}));
  EXPECT_EQ(Ids(dl, dl + 2), (Ids{2, 4}));
}

TEST_F(Seq2SeqTest, EpochsDropTheLastPartialBatchAndShuffleDeterministically) {
  std::string lines;
  for (int i = 0; i < 7; ++i) lines += "a\n";
  const auto ds = dataset(lines, lines, 8, 8);
  Seq2SeqBatchSource plain(ds, 1, 3, vocab_.pad, false, 0, 2);
  EXPECT_EQ(plain.steps_per_epoch(), 2);
  EXPECT_EQ(plain.size(), 12);
  EXPECT_EQ(plain.example_of(5), 5);
  EXPECT_EQ(plain.example_of(6), 0);  // epoch 2 starts after 6 samples (7 % 3 dropped)
  Seq2SeqBatchSource a(ds, 1, 3, vocab_.pad, true, 42, 2), b(ds, 1, 3, vocab_.pad, true, 42, 2);
  std::set<std::int64_t> epoch0;
  std::vector<std::int64_t> order0, order1;
  for (std::int64_t k = 0; k < 6; ++k) {
    order0.push_back(a.example_of(k));
    epoch0.insert(order0.back());
  }
  for (std::int64_t k = 6; k < 12; ++k) order1.push_back(a.example_of(k));
  EXPECT_EQ(epoch0.size(), 6u);                        // no example twice in an epoch
  EXPECT_NE(order0, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_NE(order0, order1);                           // each epoch its own order
  for (std::int64_t k = 11; k >= 0; --k) EXPECT_EQ(b.example_of(k), k < 6 ? order0[k] : order1[k - 6]);
  EXPECT_THROW(Seq2SeqBatchSource(ds, 1, 8, vocab_.pad, false, 0, 1), ConfigError);
  EXPECT_THROW(plain.batch(12), DataError);
}

}  // namespace
}  // namespace bignlp::finetune
