// Safetensors files: the tensor container of Hugging Face checkpoints and of bignlp's own
// checkpoint shards.
//
// Layout: u64 little-endian header length H, then H bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the raw little-endian data; offsets are relative to the end of the header. Supported dtypes:
// F32, BF16, F16, I32, I64, U16 (others are reported by name when read). The reader maps the file
// and hands out read-only host views; it validates every entry (known dtype, offsets inside the
// file, size = numel * element size) and throws DataError naming the file and tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bignlp/tensor/tensor.h"

namespace bignlp {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::uint64_t begin = 0;  ///< byte offset into the data section
  std::uint64_t end = 0;
};

class SafetensorsReader {
 public:
  /// Maps and validates `path`. Throws IoError (cannot open) or DataError (malformed).
  explicit SafetensorsReader(const std::filesystem::path& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  /// Entries in file order of their data.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  /// The entry called `name`, or nullptr.
  const SafetensorsEntry* find(const std::string& name) const;
  /// A host view of tensor `name` (read-only memory: do not write through it). Throws DataError
  /// naming the file when absent.
  TensorView view(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release_map() noexcept;

  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  const char* data_ = nullptr;  // start of the data section
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// Collects host tensors and writes them as one safetensors file (temp file + fsync + rename).
/// The tensors must stay alive until write() returns.
class SafetensorsWriter {
 public:
  /// Adds a contiguous host tensor. Throws RuntimeError for duplicates or non-host memory.
  void add(const std::string& name, const TensorView& tensor);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  /// The tensors added so far, in order.
  const std::vector<std::pair<std::string, TensorView>>& tensors() const { return tensors_; }
  /// Writes the file. Throws IoError naming the path.
  void write(const std::filesystem::path& path) const;

 private:
  std::vector<std::pair<std::string, TensorView>> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// "F32", "BF16", ... for a DType; parse the other way (nullopt-free: throws DataError with `context`).
std::string safetensors_dtype_name(DType dtype);

}  // namespace bignlp
