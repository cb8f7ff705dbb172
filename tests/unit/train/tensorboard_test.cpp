#include "bignlp/train/tensorboard.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "bignlp/core/file_io.h"

namespace bignlp::train {
namespace {

std::string hex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

TEST(TensorBoardTest, Crc32cVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::uint64_t len = 24;
  EXPECT_EQ(masked_crc32c(&len, 8), 0x224B7FA3u);
  const std::string payload = "\x1a\x11" "CRC test, one two";
  EXPECT_EQ(masked_crc32c(payload.data(), payload.size()), 0x5794D08Au);
}

TEST(TensorBoardTest, EventBytesMatchTheReferenceEncoding) {
  EXPECT_EQ(hex(encode_scalar_event(1.7e9, 100, "train_loss", 2.5f)),
            "0900000040fc54d94110642a130a110a0a747261696e5f6c6f73731500002040");
  const std::string fv = encode_file_version_event(1.7e9);
  EXPECT_EQ(fv.size(), 24u);
  EXPECT_EQ(hex(fv), "0900000040fc54d9411a0d" + hex("brain.Event:2"));
}

TEST(TensorBoardTest, WriterFramesRecords) {
  TempDir dir("tb");
  std::filesystem::path file;
  {
    TensorBoardWriter w(dir.path());
    w.add_scalar("lr", 0.5, 3);
    w.flush();
    file = w.path();
  }
  EXPECT_NE(file.filename().string().find("events.out.tfevents."), std::string::npos);
  const std::string data = read_file(file);
  // Walk the frames: two records, each length-checked.
  std::size_t pos = 0;
  int records = 0;
  while (pos < data.size()) {
    std::uint64_t len;
    std::memcpy(&len, data.data() + pos, 8);
    std::uint32_t lcrc;
    std::memcpy(&lcrc, data.data() + pos + 8, 4);
    ASSERT_EQ(lcrc, masked_crc32c(data.data() + pos, 8));
    std::uint32_t pcrc;
    std::memcpy(&pcrc, data.data() + pos + 12 + len, 4);
    ASSERT_EQ(pcrc, masked_crc32c(data.data() + pos + 12, len));
    pos += 16 + len;
    ++records;
  }
  EXPECT_EQ(records, 2);
}

}  // namespace
}  // namespace bignlp::train
