// Shape: the extents of a tensor, rank 0..kMaxRank, stored inline (no allocation).
//
// Also used for strides (in elements, not bytes). Negative indices count from the back:
// shape[-1] is the last extent. Shape letters in comments follow docs/shapes.md (B, T, C, ...).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

namespace bignlp {

class Shape {
 public:
  static constexpr int kMaxRank = 6;

  Shape() = default;
  /// Shape{2, 3} is a 2x3 extent. Throws RuntimeError for a rank above kMaxRank or a negative extent.
  Shape(std::initializer_list<std::int64_t> dims);

  /// Number of dimensions.
  int rank() const { return rank_; }
  /// Extent of dimension `i` (negative: from the back). Checked.
  std::int64_t operator[](int i) const;
  /// Sets dimension `i` (negative: from the back). Checked.
  void set(int i, std::int64_t value);
  /// Appends a dimension.
  void push_back(std::int64_t value);
  /// Product of the extents (1 for rank 0).
  std::int64_t numel() const;
  /// Row-major strides of a contiguous tensor of this shape.
  Shape contiguous_strides() const;
  /// "(2, 3)".
  std::string to_string() const;

  const std::int64_t* begin() const { return dims_; }
  const std::int64_t* end() const { return dims_ + rank_; }
  friend bool operator==(const Shape& a, const Shape& b);

 private:
  std::int64_t dims_[kMaxRank] = {};
  int rank_ = 0;
};

}  // namespace bignlp
