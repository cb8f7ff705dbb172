// Internal helpers of the CUDA op launchers: the context checks every launcher starts with, and
// scratch memory from the op context's allocator (the caching allocator: no cudaMalloc per call).
#pragma once

#include <cstddef>

#include "../backend.h"
#include "bignlp/core/check.h"
#include "bignlp/ops/cuda_context.h"
#include "bignlp/ops/ops.h"
#include "kernels/kernels.h"

namespace bignlp::ops::cuda {

/// The CUDA state of a context whose device is CUDA (checked: cuda and allocator are set). Makes
/// the context's device current for the calling thread (kernels launch on the current device;
/// threads that drive several devices, like in-process ranks, switch here).
inline CudaContext& cuda_state(const OpContext& ctx) {
  BIGNLP_CHECK(ctx.cuda != nullptr, "an op on {} needs OpContext::cuda (a CudaContext)", ctx.device.to_string());
  BIGNLP_CHECK(ctx.allocator != nullptr, "an op on {} needs OpContext::allocator for its temporaries",
               ctx.device.to_string());
  BIGNLP_CHECK(ctx.cuda->device == ctx.device.index, "OpContext device {} does not match its CudaContext (cuda:{})",
               ctx.device.to_string(), ctx.cuda->device);
  int current = -1;
  CUDA_CHECK(cudaGetDevice(&current));
  if (current != ctx.cuda->device) CUDA_CHECK(cudaSetDevice(ctx.cuda->device));
  return *ctx.cuda;
}

/// Device scratch memory for the duration of one op (returned to the allocator at scope exit;
/// later work on the same stream may reuse it, which stream order makes safe).
class Scratch {
 public:
  Scratch(Allocator& allocator, std::size_t bytes) : allocator_(&allocator), bytes_(bytes) {
    ptr_ = bytes > 0 ? allocator.allocate(bytes) : nullptr;
  }
  ~Scratch() {
    if (ptr_ != nullptr) allocator_->deallocate(ptr_, bytes_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  Allocator* allocator_;
  void* ptr_ = nullptr;
  std::size_t bytes_;
};

/// Leading dimension (elements) of a 2-D matrix with unit inner stride, as the CPU reference reads it.
inline std::int64_t leading_dim(const TensorView& m) {
  return m.size(0) <= 1 ? (m.size(1) > 1 ? m.size(1) : 1) : m.stride(0);
}

}  // namespace bignlp::ops::cuda
