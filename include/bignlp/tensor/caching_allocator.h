// CachingAllocator: an Allocator that keeps freed blocks for reuse instead of returning them to the
// system, so a training loop that allocates the same activation buffers every step stops calling
// the system allocator (cudaMalloc, which also synchronises the device) after its first step.
//
// The policy is device-independent; a MemorySource supplies the raw memory (cudaMalloc/cudaFree for
// CUDA, see cuda_allocator.h; a counting fake in the tests). Layout:
// - requests are rounded up to 512 bytes; blocks of at most 1 MiB come from 2 MiB segments (the
//   small pool), larger ones from 20 MiB segments (up to 10 MiB) or segments of the request rounded
//   to 2 MiB (the large pool); the pools never mix, which keeps small blocks from pinning large
//   segments;
// - a request takes the smallest free block of its pool that fits (best fit, lowest address on
//   ties) and splits off the remainder when it is at least 512 bytes (small pool) or 1 MiB (large);
// - a freed block merges with free neighbours of its segment;
// - when the source is exhausted, fully free segments are returned to it and the request retried;
//   then a RuntimeError names the size, the device and the allocator's statistics.
// Stream semantics: freed memory is handed out again immediately. That is safe when all work that
// touches the memory runs on one stream in order (the CudaContext stream), which is how ops run.
// Thread-safe (one mutex).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "bignlp/tensor/allocator.h"

namespace bignlp {

/// Raw memory under a CachingAllocator.
class MemorySource {
 public:
  virtual ~MemorySource() = default;
  virtual Device device() const = 0;
  /// `bytes` of memory aligned to at least 256, or nullptr when the device is out of memory
  /// (other failures throw).
  virtual void* allocate(std::size_t bytes) = 0;
  /// Returns memory from allocate(). Waits for the device's outstanding work first when the
  /// memory could still be in use (cudaFree does).
  virtual void deallocate(void* ptr, std::size_t bytes) noexcept = 0;
};

class CachingAllocator final : public Allocator {
 public:
  /// Rounding granule and the small/large split (bytes).
  static constexpr std::size_t kRound = 512;
  static constexpr std::size_t kSmallLimit = std::size_t{1} << 20;
  static constexpr std::size_t kSmallSegment = std::size_t{2} << 20;
  static constexpr std::size_t kMediumLimit = std::size_t{10} << 20;
  static constexpr std::size_t kMediumSegment = std::size_t{20} << 20;
  static constexpr std::size_t kLargeRound = std::size_t{2} << 20;

  explicit CachingAllocator(std::unique_ptr<MemorySource> source);
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  Device device() const override;
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr, std::size_t bytes) noexcept override;
  AllocatorStats stats() const override;
  void reset_peak() override;
  /// Returns every fully free segment to the source.
  void release_cached() override;

  /// Size in bytes a request of `bytes` occupies (rounded up to kRound).
  static std::size_t rounded_size(std::size_t bytes);
  /// Size of the segment the allocator requests from the source for a block of `rounded` bytes.
  static std::size_t segment_size(std::size_t rounded);

 private:
  struct Block {
    char* ptr = nullptr;
    std::size_t size = 0;
    bool allocated = false;
    bool small = false;
    Block* prev = nullptr;  // neighbours inside the same segment, by address
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using Pool = std::set<Block*, BySizeThenAddress>;

  Block* find_free(Pool& pool, std::size_t size);
  Block* new_segment(std::size_t size, bool small);
  void release_free_segments();  // mutex held

  std::unique_ptr<MemorySource> source_;
  mutable std::mutex mutex_;
  Pool small_free_, large_free_;
  std::unordered_map<void*, Block*> allocated_;
  std::map<char*, std::size_t> segments_;  // base -> size
  AllocatorStats stats_;
};

}  // namespace bignlp
