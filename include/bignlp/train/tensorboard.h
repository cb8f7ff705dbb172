// TensorBoardWriter: scalar summaries in TensorBoard's tfevents format, written directly
// (formats.md §8): TFRecord framing (u64 length, masked CRC-32C of the length, payload, masked
// CRC-32C of the payload) around hand-encoded Event protobufs. The first record is the
// file_version event "brain.Event:2"; each add_scalar writes one Event{wall_time, step,
// Summary{Value{tag, simple_value}}}. File name: events.out.tfevents.<unix time>.<host>.<pid>.<uid>.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace bignlp::train {

/// CRC-32C (Castagnoli, reflected 0x82F63B78): crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xA282EAD8.
std::uint32_t masked_crc32c(const void* data, std::size_t size);

/// Serialized Event protobufs (exposed for tests).
std::string encode_file_version_event(double wall_time);
std::string encode_scalar_event(double wall_time, std::int64_t step, std::string_view tag, float value);
/// One TFRecord frame around `payload`.
std::string frame_record(std::string_view payload);

class TensorBoardWriter {
 public:
  /// Creates `dir` and a new event file in it. Throws IoError naming the path.
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  /// Appends one scalar (wall time: now).
  void add_scalar(std::string_view tag, double value, std::int64_t step);
  /// Flushes buffered records to the OS.
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write(std::string_view record);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace bignlp::train
