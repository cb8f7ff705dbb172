// Streaming reader of plain, zstd (.zst) and gzip (.gz) files, chosen by the file extension.
//
// Reads in fixed-size pieces, so memory stays constant whatever the file size. Errors are
// DataError naming the file: a zstd or gzip stream that ends inside a frame/member is reported as
// truncated, corrupt data as corrupt (with the library's reason). Concatenated gzip members and
// zstd frames are read through. compressed_position() tells how far into the file on disk the
// reader is (for progress and ETA).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace bignlp::data {

enum class Compression { kNone, kZstd, kGzip };

/// Compression implied by the name: ".zst"/".zstd" -> zstd, ".gz" -> gzip, otherwise none.
Compression compression_of(const std::filesystem::path& path);

class DecompressingReader {
 public:
  /// Opens `path`; throws IoError when it cannot be opened.
  explicit DecompressingReader(const std::filesystem::path& path);
  DecompressingReader(const std::filesystem::path& path, Compression compression);
  ~DecompressingReader();
  DecompressingReader(const DecompressingReader&) = delete;
  DecompressingReader& operator=(const DecompressingReader&) = delete;

  /// Reads up to `capacity` decompressed bytes into `out`; returns 0 only at the end of the data.
  std::size_t read(char* out, std::size_t capacity);
  /// Appends up to `capacity` bytes to `out`; returns how many were appended.
  std::size_t read_append(std::string& out, std::size_t capacity);

  /// Bytes of the file consumed so far, and its size.
  std::uint64_t compressed_position() const;
  std::uint64_t compressed_size() const;
  const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Decompresses `source` into `destination` (atomically: temp name + rename). Returns the number
/// of bytes written.
std::uint64_t decompress_file(const std::filesystem::path& source, const std::filesystem::path& destination);

}  // namespace bignlp::data
