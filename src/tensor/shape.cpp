#include "bignlp/tensor/shape.h"

#include <fmt/format.h>

#include "bignlp/core/check.h"

namespace bignlp {

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  BIGNLP_CHECK(dims.size() <= static_cast<std::size_t>(kMaxRank), "rank {} exceeds the maximum rank {}",
               dims.size(), kMaxRank);
  for (std::int64_t d : dims) {
    BIGNLP_CHECK(d >= 0, "negative extent {} in a shape", d);
    dims_[rank_++] = d;
  }
}

std::int64_t Shape::operator[](int i) const {
  const int j = i < 0 ? i + rank_ : i;
  BIGNLP_CHECK(j >= 0 && j < rank_, "dimension {} out of range for rank {}", i, rank_);
  return dims_[j];
}

void Shape::set(int i, std::int64_t value) {
  const int j = i < 0 ? i + rank_ : i;
  BIGNLP_CHECK(j >= 0 && j < rank_, "dimension {} out of range for rank {}", i, rank_);
  dims_[j] = value;
}

void Shape::push_back(std::int64_t value) {
  BIGNLP_CHECK(rank_ < kMaxRank, "rank exceeds the maximum rank {}", kMaxRank);
  dims_[rank_++] = value;
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

Shape Shape::contiguous_strides() const {
  Shape s = *this;
  std::int64_t acc = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    s.dims_[i] = acc;
    acc *= dims_[i];
  }
  return s;
}

std::string Shape::to_string() const {
  std::string out = "(";
  for (int i = 0; i < rank_; ++i) out += fmt::format("{}{}", i ? ", " : "", dims_[i]);
  return out + ")";
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.rank_ != b.rank_) return false;
  for (int i = 0; i < a.rank_; ++i)
    if (a.dims_[i] != b.dims_[i]) return false;
  return true;
}

}  // namespace bignlp
