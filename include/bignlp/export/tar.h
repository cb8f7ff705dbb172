// POSIX tar archives: the container of .nemo files.
//
// TarWriter writes ustar members (names up to 255 bytes through the prefix field; sizes past 8 GiB
// in GNU base-256, which Python's tarfile reads), a directory entry per folder, and two zero blocks
// at the end. It streams files from disk in 1 MiB pieces. extract_tar unpacks an uncompressed or a
// gzip-compressed archive (zlib reads both) into a directory, checking each header's checksum,
// refusing absolute names, ".." and links, and reporting a truncated archive with the member it
// was reading.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace bignlp::exporting {

class TarWriter {
 public:
  /// Opens `path` for writing (the caller stages and renames it).
  explicit TarWriter(const std::filesystem::path& path);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  void add_directory(const std::string& name);
  void add_file(const std::string& name, const std::filesystem::path& source);
  void add_bytes(const std::string& name, const std::string& content);
  /// Writes the end-of-archive blocks, fsyncs and closes. Throws IoError.
  void finish();

 private:
  void header(const std::string& name, std::uint64_t size, char type);
  void write(const void* data, std::size_t size);
  void pad(std::uint64_t size);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

/// Unpacks `archive` (tar or tar.gz) into `dest` (which must exist). Returns the member names
/// written (files only, without a leading "./"). Throws DataError naming the archive and member.
std::vector<std::string> extract_tar(const std::filesystem::path& archive, const std::filesystem::path& dest);

}  // namespace bignlp::exporting
