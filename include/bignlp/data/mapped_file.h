// A read-only memory mapping of a whole file (RAII).
//
// Used by the indexed-dataset reader and the .npy index caches: the bytes stay on disk and the OS
// pages them in on demand, so opening a 100 GB dataset costs nothing. An empty file maps to an
// empty span (mmap of length 0 is not allowed, so no mapping is made). Errors name the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace bignlp::data {

class MappedFile {
 public:
  MappedFile() = default;
  /// Maps `path` read-only. Throws IoError("cannot open '<path>': <reason>").
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  /// The file's bytes.
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void reset() noexcept;
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace bignlp::data
