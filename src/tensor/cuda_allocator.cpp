// cudaMalloc-backed memory source. The device is made current around each call and restored, so an
// allocator for device 1 works from a thread whose current device is 0.
#include "bignlp/tensor/cuda_allocator.h"

#include <cuda_runtime_api.h>

#include "bignlp/tensor/cuda_check.h"

namespace bignlp {
namespace {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) CUDA_CHECK(cudaSetDevice(device));
    switched_ = previous_ != device;
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

class CudaMemorySource final : public MemorySource {
 public:
  explicit CudaMemorySource(int device) : device_(device) {}
  Device device() const override { return Device::cuda(device_); }

  void* allocate(std::size_t bytes) override {
    DeviceGuard guard(device_);
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error so the next call starts clean
      return nullptr;
    }
    CUDA_CHECK(status);
    return ptr;
  }

  void deallocate(void* ptr, std::size_t /*bytes*/) noexcept override {
    int previous = 0;
    if (cudaGetDevice(&previous) != cudaSuccess) return;
    if (previous != device_) cudaSetDevice(device_);
    cudaFree(ptr);  // synchronises with the device: outstanding kernels may still use the memory
    if (previous != device_) cudaSetDevice(previous);
  }

 private:
  int device_;
};

}  // namespace

std::unique_ptr<MemorySource> make_cuda_memory_source(int device) {
  return std::make_unique<CudaMemorySource>(device);
}

std::unique_ptr<CachingAllocator> make_cuda_allocator(int device) {
  return std::make_unique<CachingAllocator>(make_cuda_memory_source(device));
}

}  // namespace bignlp
