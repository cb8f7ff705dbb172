// Megatron's memory-mapped indexed dataset (`--dataset-impl mmap`): `<prefix>.bin` holds the
// token ids of every sequence back to back, `<prefix>.idx` the index (reference formats.md §1).
//
// .idx (little-endian, no padding):
//   0  "MMIDIDX\0\0" (9 bytes)   9  u64 version = 1   17  u8 dtype code   18  u64 N (sequences)
//   26 u64 D (doc_idx entries = documents + 1)   34  i32 sizes[N]   34+4N  i64 pointers[N] (byte
//   offsets into .bin)   34+12N  i64 doc_idx[D] (document k = sequences [doc_idx[k], doc_idx[k+1]))
// Worked example: documents [a,b,c] and [d,e] as uint16 give an 82-byte .idx (sizes [3,2],
// pointers [0,6], doc_idx [0,1,2]) and a 10-byte .bin.
//
// The reader validates everything against the file lengths and names the corrupt or truncated
// file; the index arrays are unaligned in the file (offset 34), so they are read through
// UnalignedArray instead of being copied. The builder writes to temporary names and renames
// .bin then .idx only in finalize(): an .idx that exists always has its complete .bin.
// Not handled: the legacy TNTIDX (lazy/cached) format, which is reported as such.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bignlp/data/mapped_file.h"

namespace bignlp::data {

/// Dtype codes of the .idx header (Megatron's table). Codes 6/7 are floats and never hold tokens.
enum class TokenDType : std::uint8_t {
  kUint8 = 1,
  kInt8 = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kFloat64 = 6,
  kFloat = 7,
  kUint16 = 8,
};

/// Bytes per element (0 for an unknown code).
std::size_t token_dtype_size(TokenDType dtype);
/// "uint16", "int32", ...
std::string_view token_dtype_name(TokenDType dtype);
/// Preprocessing's "best fitting dtype": uint16 when the unpadded vocab has < 65500 ids, else int32.
TokenDType best_fitting_token_dtype(std::int64_t vocab_size);

/// `<prefix>.bin` and `<prefix>.idx`.
std::filesystem::path dataset_bin_path(const std::filesystem::path& prefix);
std::filesystem::path dataset_idx_path(const std::filesystem::path& prefix);
/// True when both files of `prefix` exist.
bool indexed_dataset_exists(const std::filesystem::path& prefix);

/// A read-only view of a little-endian array at an arbitrary byte offset.
template <typename T>
class UnalignedArray {
 public:
  UnalignedArray() = default;
  UnalignedArray(const std::byte* data, std::size_t size) : data_(data), size_(size) {}
  T operator[](std::size_t i) const {
    T v;
    std::memcpy(&v, data_ + i * sizeof(T), sizeof(T));
    return v;
  }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::vector<T> to_vector() const {
    std::vector<T> out(size_);
    if (size_) std::memcpy(out.data(), data_, size_ * sizeof(T));
    return out;
  }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A validated, memory-mapped dataset. Thread-safe for concurrent reads.
class IndexedDataset {
 public:
  /// Opens and validates `<prefix>.idx` / `<prefix>.bin`. Throws IoError when a file cannot be
  /// opened and DataError naming the file when it is corrupt or truncated.
  explicit IndexedDataset(const std::filesystem::path& prefix);

  const std::filesystem::path& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }
  std::size_t itemsize() const { return itemsize_; }
  /// Number of sequences N (entries of sizes/pointers).
  std::size_t num_sequences() const { return sizes_.size(); }
  /// Number of documents (doc_idx entries - 1).
  std::size_t num_documents() const { return doc_idx_.empty() ? 0 : doc_idx_.size() - 1; }
  UnalignedArray<std::int32_t> sizes() const { return sizes_; }
  UnalignedArray<std::int64_t> pointers() const { return pointers_; }
  UnalignedArray<std::int64_t> doc_idx() const { return doc_idx_; }
  /// Sum of all sizes.
  std::int64_t total_tokens() const { return total_tokens_; }

  /// Copies tokens [offset, offset + out.size()) of sequence `i` into `out`, widening the stored
  /// dtype. Throws RuntimeError when the range is outside the sequence.
  void read(std::size_t i, std::size_t offset, std::span<std::int64_t> out) const;
  void read(std::size_t i, std::size_t offset, std::span<std::int32_t> out) const;
  /// Tokens [offset, end) of sequence `i`.
  std::vector<std::int64_t> get(std::size_t i, std::size_t offset = 0) const;
  /// The raw bytes of sequence `i` in the stored dtype.
  std::span<const std::byte> raw(std::size_t i) const;

 private:
  template <typename Out>
  void read_impl(std::size_t i, std::size_t offset, std::span<Out> out) const;

  std::filesystem::path prefix_;
  MappedFile idx_;
  MappedFile bin_;
  TokenDType dtype_ = TokenDType::kUint16;
  std::size_t itemsize_ = 2;
  UnalignedArray<std::int32_t> sizes_;
  UnalignedArray<std::int64_t> pointers_;
  UnalignedArray<std::int64_t> doc_idx_;
  std::int64_t total_tokens_ = 0;
};

/// Writes a dataset like Megatron's MMapIndexedDatasetBuilder: add_item appends a sequence,
/// end_document closes a document, finalize writes the index and renames both files into place.
/// Destroying an unfinalized builder removes its temporary files.
class IndexedDatasetBuilder {
 public:
  IndexedDatasetBuilder(const std::filesystem::path& prefix, TokenDType dtype);
  ~IndexedDatasetBuilder();
  IndexedDatasetBuilder(const IndexedDatasetBuilder&) = delete;
  IndexedDatasetBuilder& operator=(const IndexedDatasetBuilder&) = delete;

  /// Appends one sequence. Throws DataError when a token does not fit the dtype.
  void add_item(std::span<const std::int32_t> tokens);
  void add_item(std::span<const std::int64_t> tokens);
  /// Marks the end of a document (appends the sequence count to doc_idx).
  void end_document();
  /// Appends every sequence and document of `other` (same dtype required), copying its .bin bytes
  /// (Megatron's merge_file_).
  void merge(const IndexedDataset& other);
  /// Writes the .idx, syncs, and renames both files to their final names.
  void finalize();

  std::size_t num_sequences() const { return sizes_.size(); }
  std::size_t num_documents() const { return doc_idx_.size() - 1; }
  std::int64_t num_tokens() const { return tokens_; }
  TokenDType dtype() const { return dtype_; }

 private:
  void write_bytes(const void* data, std::size_t size);
  void flush();
  template <typename In>
  void add_item_impl(std::span<const In> tokens);

  std::filesystem::path prefix_;
  std::filesystem::path bin_tmp_;
  TokenDType dtype_;
  std::size_t itemsize_;
  int fd_ = -1;
  std::vector<std::byte> buffer_;
  std::vector<std::int32_t> sizes_;
  std::vector<std::int64_t> doc_idx_{0};
  std::int64_t bin_bytes_ = 0;
  std::int64_t tokens_ = 0;
  bool finalized_ = false;
};

/// Concatenates datasets (same dtype) into `output_prefix`, in order (Megatron's merge_datasets).
void merge_indexed_datasets(const std::vector<std::filesystem::path>& input_prefixes,
                            const std::filesystem::path& output_prefix);

}  // namespace bignlp::data
