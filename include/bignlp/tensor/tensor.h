// TensorView: a non-owning view of typed, strided memory on some device.
//
// A value record {data, dtype, shape, strides (elements), device}, cheap to copy. It never owns or
// frees memory (Buffer does). A default-constructed view is "empty" (no data): optional op
// arguments take an empty view. Views of CUDA memory may be passed around freely on the host but
// their data must only be touched by ops; data<T>() returns the raw pointer either way.
//
// Invariants: rank <= Shape::kMaxRank; strides are in elements and may describe sub-views
// (slice/transpose), in which case is_contiguous() is false and ops that need packed rows say so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "bignlp/core/check.h"
#include "bignlp/tensor/device.h"
#include "bignlp/tensor/dtype.h"
#include "bignlp/tensor/shape.h"

namespace bignlp {

class TensorView {
 public:
  /// An empty view (defined() is false).
  TensorView() = default;
  /// A contiguous (row-major) view.
  TensorView(void* data, DType dtype, Shape shape, Device device = Device::cpu());
  /// A view with explicit strides (elements).
  TensorView(void* data, DType dtype, Shape shape, Shape strides, Device device);

  bool defined() const { return data_ != nullptr || shape_.rank() > 0; }
  void* raw() const { return data_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  Device device() const { return device_; }
  int rank() const { return shape_.rank(); }
  /// Extent of dimension i (negative: from the back).
  std::int64_t size(int i) const { return shape_[i]; }
  /// Stride (elements) of dimension i (negative: from the back).
  std::int64_t stride(int i) const { return strides_[i]; }
  std::int64_t numel() const { return shape_.numel(); }
  /// Bytes spanned by the elements (numel * element size); meaningful for contiguous views.
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  /// True when the strides are the row-major strides of the shape.
  bool is_contiguous() const;
  /// True when the last dimension has stride 1 (rows may be padded: the layout GEMMs accept).
  bool has_unit_inner_stride() const { return rank() == 0 || stride(-1) == 1 || size(-1) <= 1; }

  /// Typed pointer; checks that T matches dtype().
  template <typename T>
  T* data() const {
    BIGNLP_CHECK(dtype_of<T>() == dtype_, "tensor has dtype {}, accessed as {}", dtype_name(dtype_),
                 dtype_name(dtype_of<T>()));
    return static_cast<T*>(data_);
  }

  /// The same memory with another shape of equal numel; requires a contiguous view.
  TensorView reshape(Shape shape) const;
  /// Collapses all leading dimensions: (d0, ..., dn) -> (d0*...*dn-1, dn). Contiguous views only.
  TensorView flatten_2d() const;
  /// Elements [start, start+length) of dimension `dim`; strides unchanged.
  TensorView slice(int dim, std::int64_t start, std::int64_t length) const;
  /// Index `index` of dimension `dim`, which is removed.
  TensorView select(int dim, std::int64_t index) const;
  /// Swaps two dimensions (strides only).
  TensorView transpose(int dim0, int dim1) const;
  /// The same view with another dtype of the same size (e.g. uint16 <-> bf16 bits).
  TensorView reinterpret(DType dtype) const;

  /// "bf16(4, 8) cuda:0" (strides shown when not contiguous).
  std::string to_string() const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Shape shape_;
  Shape strides_;
  Device device_ = Device::cpu();
};

}  // namespace bignlp
