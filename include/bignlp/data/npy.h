// NumPy .npy files (format version 1.0), written byte-identically to numpy.save and read by
// memory mapping, for the GPT index caches (doc_idx / sample_idx / shuffle_idx, reference
// formats.md §2.4).
//
// Layout: "\x93NUMPY" 0x01 0x00, u16 header length, an ASCII dict literal
// "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }" padded with spaces (numpy >= 1.24
// reserves room for the first axis to grow) and '\n' so the data starts at a multiple of 64, then
// raw C-order little-endian data. Readers parse the header length instead of assuming 128.
// Only C-order arrays of plain integer/float types are handled (no object or structured dtypes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bignlp/data/mapped_file.h"

namespace bignlp::data {

/// The numpy 'descr' string of T: int32 -> "<i4", uint8 -> "|u1", double -> "<f8".
template <typename T>
constexpr std::string_view npy_descr() {
  if constexpr (std::is_same_v<T, std::int8_t>) return "|i1";
  else if constexpr (std::is_same_v<T, std::uint8_t>) return "|u1";
  else if constexpr (std::is_same_v<T, std::int16_t>) return "<i2";
  else if constexpr (std::is_same_v<T, std::uint16_t>) return "<u2";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "<i4";
  else if constexpr (std::is_same_v<T, std::uint32_t>) return "<u4";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
  else if constexpr (std::is_same_v<T, std::uint64_t>) return "<u8";
  else if constexpr (std::is_same_v<T, float>) return "<f4";
  else if constexpr (std::is_same_v<T, double>) return "<f8";
  else static_assert(sizeof(T) == 0, "unsupported npy element type");
}

/// The complete preamble (magic, version, length, padded dict) numpy.save writes for an array
/// of `descr` and `shape`.
std::string npy_preamble(std::string_view descr, const std::vector<std::int64_t>& shape);

/// Writes an .npy file atomically (temp + rename). `data` holds the elements in C order.
void write_npy_bytes(const std::filesystem::path& path, std::string_view descr,
                     const std::vector<std::int64_t>& shape, std::span<const std::byte> data);

template <typename T>
void write_npy(const std::filesystem::path& path, std::span<const T> values, std::vector<std::int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<std::int64_t>(values.size())};
  write_npy_bytes(path, npy_descr<T>(), shape, std::as_bytes(values));
}

/// A memory-mapped .npy array. The header is validated (magic, version, dict, data size); errors
/// are DataError naming the file.
class NpyArray {
 public:
  explicit NpyArray(const std::filesystem::path& path);

  const std::string& descr() const { return descr_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t element_count() const;
  const std::filesystem::path& path() const { return file_.path(); }

  /// The elements as T; throws DataError when the stored dtype is not T.
  template <typename T>
  std::span<const T> values() const {
    check_descr(npy_descr<T>());
    return {reinterpret_cast<const T*>(file_.data() + data_offset_), static_cast<std::size_t>(element_count())};
  }

 private:
  void check_descr(std::string_view expected) const;
  MappedFile file_;
  std::string descr_;
  std::vector<std::int64_t> shape_;
  std::size_t data_offset_ = 0;
};

}  // namespace bignlp::data
