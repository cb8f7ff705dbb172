#include "bignlp/data/indexed_dataset.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;
using testing::numpy_peer;

std::string bytes_of(const fs::path& p) { return read_file(p); }

void write_docs(const fs::path& prefix, TokenDType dtype, const std::vector<std::vector<std::vector<std::int32_t>>>& docs) {
  IndexedDatasetBuilder b(prefix, dtype);
  for (const auto& doc : docs) {
    for (const auto& seq : doc) b.add_item(std::span<const std::int32_t>(seq));
    b.end_document();
  }
  b.finalize();
}

TEST(IndexedDataset, WorkedExampleIsByteExact) {
  TempDir dir;
  const fs::path prefix = dir.path() / "ex";
  write_docs(prefix, TokenDType::kUint16, {{{10, 11, 12}}, {{13, 14}}});
  const std::string idx = bytes_of(prefix.string() + ".idx");
  ASSERT_EQ(idx.size(), 82u);
  std::string expected("MMIDIDX\0\0", 9);
  const auto u64 = [&](std::uint64_t v) { expected.append(reinterpret_cast<const char*>(&v), 8); };
  const auto i32 = [&](std::int32_t v) { expected.append(reinterpret_cast<const char*>(&v), 4); };
  u64(1);
  expected.push_back('\x08');
  u64(2);
  u64(3);
  i32(3);
  i32(2);
  u64(0);
  u64(6);
  u64(0);
  u64(1);
  u64(2);
  EXPECT_EQ(idx, expected);
  const std::string bin = bytes_of(prefix.string() + ".bin");
  EXPECT_EQ(bin, std::string("\x0a\x00\x0b\x00\x0c\x00\x0d\x00\x0e\x00", 10));
}

TEST(IndexedDataset, RoundTripAllIntegerDtypes) {
  TempDir dir;
  for (TokenDType dt : {TokenDType::kUint8, TokenDType::kInt8, TokenDType::kInt16, TokenDType::kUint16,
                        TokenDType::kInt32, TokenDType::kInt64}) {
    const fs::path prefix = dir.path() / std::string(token_dtype_name(dt));
    write_docs(prefix, dt, {{{1, 2, 3}, {4}}, {{5, 6, 7, 8, 9}}, {{}}, {{100, 0, 120}}});
    IndexedDataset ds(prefix);
    EXPECT_EQ(ds.dtype(), dt);
    ASSERT_EQ(ds.num_sequences(), 5u);
    EXPECT_EQ(ds.num_documents(), 4u);
    EXPECT_EQ(ds.doc_idx().to_vector(), (std::vector<std::int64_t>{0, 2, 3, 4, 5}));
    EXPECT_EQ(ds.sizes().to_vector(), (std::vector<std::int32_t>{3, 1, 5, 0, 3}));
    EXPECT_EQ(ds.get(2), (std::vector<std::int64_t>{5, 6, 7, 8, 9}));
    EXPECT_EQ(ds.get(2, 3), (std::vector<std::int64_t>{8, 9}));
    EXPECT_EQ(ds.get(4), (std::vector<std::int64_t>{100, 0, 120}));
    EXPECT_EQ(ds.total_tokens(), 12);
    std::vector<std::int32_t> part(2);
    ds.read(2, 1, std::span<std::int32_t>(part));
    EXPECT_EQ(part, (std::vector<std::int32_t>{6, 7}));
    EXPECT_THROW(ds.read(2, 4, std::span<std::int32_t>(part)), RuntimeError);
  }
}

TEST(IndexedDataset, BestFittingDtype) {
  EXPECT_EQ(best_fitting_token_dtype(50257), TokenDType::kUint16);
  EXPECT_EQ(best_fitting_token_dtype(28996), TokenDType::kUint16);
  EXPECT_EQ(best_fitting_token_dtype(65499), TokenDType::kUint16);
  EXPECT_EQ(best_fitting_token_dtype(65500), TokenDType::kInt32);
  EXPECT_EQ(best_fitting_token_dtype(250100), TokenDType::kInt32);
}

TEST(IndexedDataset, TokenOutOfDtypeRangeIsAnError) {
  TempDir dir;
  IndexedDatasetBuilder b(dir.path() / "x", TokenDType::kUint16);
  const std::vector<std::int32_t> bad{1, 70000};
  EXPECT_THROW(b.add_item(std::span<const std::int32_t>(bad)), DataError);
}

TEST(IndexedDataset, UnfinalizedBuilderLeavesNothingBehind) {
  TempDir dir;
  {
    IndexedDatasetBuilder b(dir.path() / "x", TokenDType::kUint16);
    const std::vector<std::int32_t> t{1, 2};
    b.add_item(std::span<const std::int32_t>(t));
    b.end_document();
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(IndexedDataset, MergeMatchesMegatronSemantics) {
  TempDir dir;
  write_docs(dir.path() / "a", TokenDType::kUint16, {{{1, 2}, {3}}, {{4}}});
  write_docs(dir.path() / "b", TokenDType::kUint16, {{{5, 6, 7}}, {{8}, {9, 10}}});
  merge_indexed_datasets({dir.path() / "a", dir.path() / "b"}, dir.path() / "ab");
  IndexedDataset ds(dir.path() / "ab");
  EXPECT_EQ(ds.sizes().to_vector(), (std::vector<std::int32_t>{2, 1, 1, 3, 1, 2}));
  EXPECT_EQ(ds.doc_idx().to_vector(), (std::vector<std::int64_t>{0, 2, 3, 4, 6}));
  EXPECT_EQ(ds.pointers().to_vector(), (std::vector<std::int64_t>{0, 4, 6, 8, 14, 16}));
  EXPECT_EQ(ds.get(5), (std::vector<std::int64_t>{9, 10}));
  write_docs(dir.path() / "c", TokenDType::kInt32, {{{1}}});
  EXPECT_THROW(merge_indexed_datasets({dir.path() / "a", dir.path() / "c"}, dir.path() / "ac"), DataError);
}

// Corruptions: each must be a DataError naming the file at fault.
class IndexedDatasetCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = dir_.path() / "ds";
    write_docs(prefix_, TokenDType::kUint16, {{{1, 2, 3}}, {{4, 5}}, {{6}}});
  }
  void patch(const std::string& ext, std::size_t offset, const std::string& bytes) {
    std::fstream f(prefix_.string() + ext, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string error_of() {
    try {
      IndexedDataset ds(prefix_);
    } catch (const DataError& e) {
      return e.what();
    }
    return "no error";
  }
  TempDir dir_;
  fs::path prefix_;
};

TEST_F(IndexedDatasetCorruption, TruncatedBin) {
  fs::resize_file(prefix_.string() + ".bin", 7);
  const std::string msg = error_of();
  EXPECT_NE(msg.find("ds.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetCorruption, TruncatedIdx) {
  fs::resize_file(prefix_.string() + ".idx", 60);
  const std::string msg = error_of();
  EXPECT_NE(msg.find("ds.idx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  fs::resize_file(prefix_.string() + ".idx", 20);
  EXPECT_NE(error_of().find("header alone"), std::string::npos);
}

TEST_F(IndexedDatasetCorruption, BadMagicVersionDtypeAndPointers) {
  patch(".idx", 0, "X");
  EXPECT_NE(error_of().find("bad magic"), std::string::npos);
  patch(".idx", 0, "M");
  patch(".idx", 9, std::string("\x02", 1));
  EXPECT_NE(error_of().find("version 2"), std::string::npos);
  patch(".idx", 9, std::string("\x01", 1));
  patch(".idx", 17, std::string("\x06", 1));
  EXPECT_NE(error_of().find("cannot hold token ids"), std::string::npos);
  patch(".idx", 17, std::string("\x08", 1));
  EXPECT_EQ(error_of(), "no error");
  patch(".idx", 34 + 12 + 8, std::string("\x07", 1));  // pointers[1] = 7
  EXPECT_NE(error_of().find("pointers[1]"), std::string::npos) << error_of();
}

TEST_F(IndexedDatasetCorruption, LegacyFormatIsNamed) {
  patch(".idx", 0, std::string("TNTIDX\0\0", 8));
  EXPECT_NE(error_of().find("TNTIDX"), std::string::npos);
}

TEST(IndexedDataset, MissingFileIsAnIoErrorNamingIt) {
  TempDir dir;
  try {
    IndexedDataset ds(dir.path() / "nope");
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.idx"), std::string::npos) << e.what();
  }
}

// An independent numpy reader and writer agree with ours in both directions.
TEST(IndexedDataset, AgreesWithNumpyPeer) {
  BIGNLP_REQUIRE_NUMPY();
  TempDir dir;
  const std::vector<std::vector<std::vector<std::int32_t>>> docs = {
      {{50256, 1, 2}, {3}}, {{65535, 0}}, {{7, 8, 9, 10, 11}}, {{12}}};
  write_docs(dir.path() / "ours", TokenDType::kUint16, docs);
  const auto peer = nlohmann::json::parse(numpy_peer("read-dataset " + (dir.path() / "ours").string()));
  EXPECT_EQ(peer["dtype"], 8);
  EXPECT_EQ(peer["sizes"], nlohmann::json({3, 1, 2, 5, 1}));
  EXPECT_EQ(peer["pointers"], nlohmann::json({0, 6, 8, 12, 22}));
  EXPECT_EQ(peer["doc_idx"], nlohmann::json({0, 2, 3, 4, 5}));
  EXPECT_EQ(peer["seqs"][0], nlohmann::json({50256, 1, 2}));
  EXPECT_EQ(peer["seqs"][2], nlohmann::json({65535, 0}));

  numpy_peer("write-dataset " + (dir.path() / "theirs").string() + " int32 '[[[1,2],[3]],[[400000]],[[5,6,7]]]'");
  IndexedDataset ds(dir.path() / "theirs");
  EXPECT_EQ(ds.dtype(), TokenDType::kInt32);
  EXPECT_EQ(ds.doc_idx().to_vector(), (std::vector<std::int64_t>{0, 2, 3, 4}));
  EXPECT_EQ(ds.get(2), (std::vector<std::int64_t>{400000}));
  EXPECT_EQ(ds.get(3), (std::vector<std::int64_t>{5, 6, 7}));
}

}  // namespace
}  // namespace bignlp::data
