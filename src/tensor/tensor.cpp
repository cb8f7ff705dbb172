#include "bignlp/tensor/tensor.h"

#include <fmt/format.h>

#include <utility>

namespace bignlp {

TensorView::TensorView(void* data, DType dtype, Shape shape, Device device)
    : data_(data), dtype_(dtype), shape_(shape), strides_(shape.contiguous_strides()), device_(device) {}

TensorView::TensorView(void* data, DType dtype, Shape shape, Shape strides, Device device)
    : data_(data), dtype_(dtype), shape_(shape), strides_(strides), device_(device) {
  BIGNLP_CHECK(shape.rank() == strides.rank(), "shape {} and strides {} differ in rank", shape.to_string(),
               strides.to_string());
}

bool TensorView::is_contiguous() const {
  std::int64_t expected = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

TensorView TensorView::reshape(Shape shape) const {
  BIGNLP_CHECK(shape.numel() == numel(), "cannot reshape {} ({} elements) to {} ({} elements)", shape_.to_string(),
               numel(), shape.to_string(), shape.numel());
  BIGNLP_CHECK(is_contiguous(), "reshape needs a contiguous view, got {}", to_string());
  return TensorView(data_, dtype_, shape, device_);
}

TensorView TensorView::flatten_2d() const {
  BIGNLP_CHECK(rank() >= 1, "flatten_2d needs rank >= 1");
  const std::int64_t inner = size(-1);
  return reshape(Shape{inner == 0 ? 0 : numel() / inner, inner});
}

TensorView TensorView::slice(int dim, std::int64_t start, std::int64_t length) const {
  const std::int64_t extent = size(dim);
  BIGNLP_CHECK(start >= 0 && length >= 0 && start + length <= extent,
               "slice [{}, {}) out of range for dimension {} of extent {}", start, start + length, dim, extent);
  TensorView v = *this;
  v.shape_.set(dim, length);
  v.data_ = static_cast<char*>(data_) + start * stride(dim) * static_cast<std::int64_t>(dtype_size(dtype_));
  return v;
}

TensorView TensorView::select(int dim, std::int64_t index) const {
  const int d = dim < 0 ? dim + rank() : dim;
  TensorView s = slice(d, index, 1);
  Shape shape, strides;
  for (int i = 0; i < rank(); ++i) {
    if (i == d) continue;
    shape.push_back(shape_[i]);
    strides.push_back(strides_[i]);
  }
  return TensorView(s.data_, dtype_, shape, strides, device_);
}

TensorView TensorView::transpose(int dim0, int dim1) const {
  TensorView v = *this;
  const std::int64_t s0 = size(dim0), s1 = size(dim1), t0 = stride(dim0), t1 = stride(dim1);
  v.shape_.set(dim0, s1);
  v.shape_.set(dim1, s0);
  v.strides_.set(dim0, t1);
  v.strides_.set(dim1, t0);
  return v;
}

TensorView TensorView::reinterpret(DType dtype) const {
  BIGNLP_CHECK(dtype_size(dtype) == dtype_size(dtype_), "cannot reinterpret {} as {}: element sizes differ",
               dtype_name(dtype_), dtype_name(dtype));
  TensorView v = *this;
  v.dtype_ = dtype;
  return v;
}

std::string TensorView::to_string() const {
  std::string s = fmt::format("{}{} {}", dtype_name(dtype_), shape_.to_string(), device_.to_string());
  if (!is_contiguous()) s += fmt::format(" strides {}", strides_.to_string());
  return s;
}

}  // namespace bignlp
