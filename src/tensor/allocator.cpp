#include "bignlp/tensor/allocator.h"

#include <cstdlib>

#include "bignlp/core/check.h"
#include "bignlp/core/strings.h"

namespace bignlp {
namespace {

constexpr std::size_t kAlignment = 64;
// Blocks at least this large are kept on a free list after deallocate: they are the activation and
// gradient buffers a training step allocates again at the same sizes on the next step.
constexpr std::size_t kCacheThreshold = std::size_t{1} << 20;

std::size_t round_up(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

CpuAllocator::~CpuAllocator() { release_cached(); }

void* CpuAllocator::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t size = round_up(bytes);
  std::lock_guard lock(mutex_);
  void* ptr = nullptr;
  if (size >= kCacheThreshold) {
    auto it = free_.find(size);
    if (it != free_.end()) {
      ptr = it->second;
      free_.erase(it);
      stats_.cached -= size;
    }
  }
  if (ptr == nullptr) {
    ptr = std::aligned_alloc(kAlignment, size);
    if (ptr == nullptr && stats_.cached > 0) {
      for (auto& [s, p] : free_) std::free(p);
      free_.clear();
      stats_.cached = 0;
      ptr = std::aligned_alloc(kAlignment, size);
    }
    BIGNLP_CHECK(ptr != nullptr, "out of host memory allocating {} ({} in use)", format_bytes(size),
                 format_bytes(stats_.in_use));
    ++stats_.system_allocations;
  }
  stats_.in_use += size;
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  stats_.reserved = stats_.in_use + stats_.cached;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  ++stats_.allocations;
  return ptr;
}

void CpuAllocator::deallocate(void* ptr, std::size_t bytes) noexcept {
  if (ptr == nullptr) return;
  const std::size_t size = round_up(bytes);
  std::lock_guard lock(mutex_);
  stats_.in_use -= size;
  if (size >= kCacheThreshold) {
    free_.emplace(size, ptr);
    stats_.cached += size;
  } else {
    std::free(ptr);
  }
  stats_.reserved = stats_.in_use + stats_.cached;
}

AllocatorStats CpuAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CpuAllocator::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak_in_use = stats_.in_use;
  stats_.peak_reserved = stats_.reserved;
}

void CpuAllocator::release_cached() {
  std::lock_guard lock(mutex_);
  for (auto& [s, p] : free_) std::free(p);
  free_.clear();
  stats_.cached = 0;
  stats_.reserved = stats_.in_use;
}

}  // namespace bignlp
