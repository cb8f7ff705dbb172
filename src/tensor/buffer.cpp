#include "bignlp/tensor/buffer.h"

#include <utility>

namespace bignlp {

Buffer::Buffer(Allocator& allocator, DType dtype, Shape shape)
    : allocator_(&allocator), bytes_(static_cast<std::size_t>(shape.numel()) * dtype_size(dtype)), dtype_(dtype),
      shape_(shape) {
  data_ = allocator.allocate(bytes_);
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept
    : allocator_(std::exchange(other.allocator_, nullptr)), data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)), dtype_(other.dtype_), shape_(std::exchange(other.shape_, Shape{})) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    allocator_ = std::exchange(other.allocator_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    dtype_ = other.dtype_;
    shape_ = std::exchange(other.shape_, Shape{});
  }
  return *this;
}

void Buffer::release() noexcept {
  if (allocator_ != nullptr && data_ != nullptr) allocator_->deallocate(data_, bytes_);
  data_ = nullptr;
  bytes_ = 0;
}

TensorView Buffer::view() const {
  if (!defined()) return {};
  return TensorView(data_, dtype_, shape_, device());
}

Device Buffer::device() const { return allocator_ != nullptr ? allocator_->device() : Device::cpu(); }

}  // namespace bignlp
