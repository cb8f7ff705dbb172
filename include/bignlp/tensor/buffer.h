// Buffer: owning, contiguous tensor memory obtained from an Allocator.
//
// Move-only. The contents are uninitialised (fill them with ops::fill or ops::copy). view() gives
// the TensorView that ops take; the allocator must outlive the buffer.
#pragma once

#include "bignlp/tensor/allocator.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp {

class Buffer {
 public:
  /// An empty buffer.
  Buffer() = default;
  /// numel(shape) elements of `dtype` on allocator.device(), uninitialised.
  Buffer(Allocator& allocator, DType dtype, Shape shape);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// The whole buffer as a contiguous view.
  TensorView view() const;
  /// Shorthand for view() so a Buffer can be passed where a TensorView is expected.
  operator TensorView() const { return view(); }  // NOLINT(google-explicit-constructor)
  bool defined() const { return data_ != nullptr || shape_.rank() > 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t nbytes() const { return bytes_; }
  Device device() const;
  template <typename T>
  T* data() const { return view().data<T>(); }

 private:
  void release() noexcept;

  Allocator* allocator_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  DType dtype_ = DType::kF32;
  Shape shape_;
};

}  // namespace bignlp
