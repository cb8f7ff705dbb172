#include "bignlp/data/decompressing_reader.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "compress_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p, std::size_t piece = 777) {
  DecompressingReader r(p);
  std::string out;
  while (r.read_append(out, piece) > 0) {
  }
  return out;
}

std::string sample_text() {
  std::string s;
  for (int i = 0; i < 20000; ++i) s += "{\"text\": \"line " + std::to_string(i) + " of the sample\"}\n";
  return s;
}

TEST(DecompressingReader, CompressionByName) {
  EXPECT_EQ(compression_of("a/00.jsonl.zst"), Compression::kZstd);
  EXPECT_EQ(compression_of("x.json.gz"), Compression::kGzip);
  EXPECT_EQ(compression_of("x.JSONL"), Compression::kNone);
}

TEST(DecompressingReader, PlainZstdAndGzipRoundTrip) {
  TempDir dir;
  const std::string text = sample_text();
  write_file_atomic(dir.path() / "a.jsonl", text);
  write_file_atomic(dir.path() / "a.jsonl.zst", testing::zstd_compress(text));
  write_file_atomic(dir.path() / "a.json.gz", testing::gzip_compress(text));
  EXPECT_EQ(read_all(dir.path() / "a.jsonl"), text);
  EXPECT_EQ(read_all(dir.path() / "a.jsonl.zst"), text);
  EXPECT_EQ(read_all(dir.path() / "a.json.gz"), text);
  EXPECT_EQ(read_all(dir.path() / "a.jsonl.zst", 1u << 20), text);
  // Several frames / members back to back read as one stream.
  write_file_atomic(dir.path() / "m.zst", testing::zstd_compress("abc") + testing::zstd_compress("def"));
  write_file_atomic(dir.path() / "m.gz", testing::gzip_compress("abc") + testing::gzip_compress("def"));
  EXPECT_EQ(read_all(dir.path() / "m.zst"), "abcdef");
  EXPECT_EQ(read_all(dir.path() / "m.gz"), "abcdef");
  DecompressingReader r(dir.path() / "a.jsonl.zst");
  std::string sink;
  while (r.read_append(sink, 4096) > 0) {
  }
  EXPECT_EQ(r.compressed_position(), r.compressed_size());
}

TEST(DecompressingReader, TruncatedAndCorruptStreamsNameTheFile) {
  TempDir dir;
  const std::string text = sample_text();
  const std::string zst = testing::zstd_compress(text);
  const std::string gz = testing::gzip_compress(text);
  write_file_atomic(dir.path() / "cut.jsonl.zst", zst.substr(0, zst.size() / 2));
  write_file_atomic(dir.path() / "cut.json.gz", gz.substr(0, gz.size() / 2));
  for (const char* name : {"cut.jsonl.zst", "cut.json.gz"}) {
    try {
      read_all(dir.path() / name);
      FAIL() << name << " was not detected";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
  std::string bad = zst;
  bad[bad.size() / 2] ^= 0x5a;
  bad[bad.size() / 2 + 1] ^= 0x33;
  write_file_atomic(dir.path() / "bad.zst", bad);
  EXPECT_THROW(read_all(dir.path() / "bad.zst"), DataError);
  EXPECT_THROW(DecompressingReader(dir.path() / "missing.zst"), IoError);
}

TEST(DecompressingReader, DecompressFileIsAtomic) {
  TempDir dir;
  write_file_atomic(dir.path() / "a.jsonl.zst", testing::zstd_compress("hello\n"));
  EXPECT_EQ(decompress_file(dir.path() / "a.jsonl.zst", dir.path() / "out" / "a.jsonl"), 6u);
  EXPECT_EQ(read_file(dir.path() / "out" / "a.jsonl"), "hello\n");
  const std::string zst = testing::zstd_compress(sample_text());
  write_file_atomic(dir.path() / "cut.zst", zst.substr(0, 100));
  EXPECT_THROW(decompress_file(dir.path() / "cut.zst", dir.path() / "out" / "cut.jsonl"), DataError);
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "cut.jsonl"));
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path() / "out")) ++files;
  EXPECT_EQ(files, 1);  // no temporary left behind
}

}  // namespace
}  // namespace bignlp::data
