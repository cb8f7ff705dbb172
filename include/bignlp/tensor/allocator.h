// Allocator: the source of device memory for Buffers.
//
// An interface so each device can bring its own policy: CpuAllocator (aligned heap memory, with a
// size-keyed free list so the per-step activation buffers of a training loop do not page-fault
// every step) here, CachingAllocator (caching_allocator.h) over cudaMalloc on CUDA
// (cuda_allocator.h). Allocators are
// created by the program and passed in; there is no process-wide default instance. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "bignlp/tensor/device.h"

namespace bignlp {

/// Memory accounting of one allocator, in bytes.
struct AllocatorStats {
  std::size_t in_use = 0;       ///< handed out and not yet returned
  std::size_t peak_in_use = 0;  ///< maximum of in_use since creation or reset_peak()
  std::size_t cached = 0;       ///< returned but kept for reuse
  std::uint64_t allocations = 0;
  std::size_t reserved = 0;     ///< held from the system (in use + cached)
  std::size_t peak_reserved = 0;  ///< maximum of reserved since creation or reset_peak()
  std::uint64_t system_allocations = 0;  ///< calls of the system allocator (aligned_alloc, cudaMalloc)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  /// The device this allocator's memory lives on.
  virtual Device device() const = 0;
  /// At least `bytes` bytes, aligned to 64 (CPU) or 256 (CUDA). Zero bytes gives nullptr.
  /// Throws RuntimeError when memory is exhausted (the message names the size and the device).
  virtual void* allocate(std::size_t bytes) = 0;
  /// Returns memory obtained from allocate(bytes) with the same `bytes`. Never throws.
  virtual void deallocate(void* ptr, std::size_t bytes) noexcept = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  /// Releases cached (free) memory back to the system.
  virtual void release_cached() = 0;
};

/// Host memory, 64-byte aligned. Blocks of 1 MiB and more are cached by exact rounded size.
class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() = default;
  ~CpuAllocator() override;
  CpuAllocator(const CpuAllocator&) = delete;
  CpuAllocator& operator=(const CpuAllocator&) = delete;

  Device device() const override { return Device::cpu(); }
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr, std::size_t bytes) noexcept override;
  AllocatorStats stats() const override;
  void reset_peak() override;
  void release_cached() override;

 private:
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // rounded size -> block
  AllocatorStats stats_;
};

}  // namespace bignlp
