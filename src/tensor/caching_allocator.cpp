#include "bignlp/tensor/caching_allocator.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp {

CachingAllocator::CachingAllocator(std::unique_ptr<MemorySource> source) : source_(std::move(source)) {
  BIGNLP_CHECK(source_ != nullptr, "CachingAllocator needs a memory source");
}

CachingAllocator::~CachingAllocator() {
  // Buffers still alive at this point outlive their allocator (a bug in the caller); their memory
  // goes back to the source with everything else.
  for (auto& [ptr, block] : allocated_) delete block;
  for (Pool* pool : {&small_free_, &large_free_})
    for (Block* b : *pool) delete b;
  for (auto& [base, size] : segments_) source_->deallocate(base, size);
}

Device CachingAllocator::device() const { return source_->device(); }

std::size_t CachingAllocator::rounded_size(std::size_t bytes) {
  return std::max<std::size_t>(kRound, (bytes + kRound - 1) / kRound * kRound);
}

std::size_t CachingAllocator::segment_size(std::size_t rounded) {
  if (rounded <= kSmallLimit) return kSmallSegment;
  if (rounded <= kMediumLimit) return kMediumSegment;
  return (rounded + kLargeRound - 1) / kLargeRound * kLargeRound;
}

CachingAllocator::Block* CachingAllocator::find_free(Pool& pool, std::size_t size) {
  Block key;
  key.size = size;
  key.ptr = nullptr;
  auto it = pool.lower_bound(&key);
  if (it == pool.end()) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

CachingAllocator::Block* CachingAllocator::new_segment(std::size_t size, bool small) {
  void* ptr = source_->allocate(size);
  if (ptr == nullptr) return nullptr;
  ++stats_.system_allocations;
  stats_.reserved += size;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  segments_.emplace(static_cast<char*>(ptr), size);
  Block* b = new Block;
  b->ptr = static_cast<char*>(ptr);
  b->size = size;
  b->small = small;
  return b;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t size = rounded_size(bytes);
  const bool small = size <= kSmallLimit;
  std::lock_guard lock(mutex_);
  Pool& pool = small ? small_free_ : large_free_;
  Block* b = find_free(pool, size);
  if (b == nullptr) {
    const std::size_t seg = segment_size(size);
    b = new_segment(seg, small);
    if (b == nullptr) {
      release_free_segments();
      b = new_segment(seg, small);
    }
    if (b == nullptr) {
      throw RuntimeError(fmt::format(
          "out of memory on {} allocating {} (segment {}): {} in use, {} cached, {} reserved; HINT: lower "
          "micro_batch_size or enable activation checkpointing",
          source_->device().to_string(), format_bytes(bytes), format_bytes(seg), format_bytes(stats_.in_use),
          format_bytes(stats_.reserved - stats_.in_use), format_bytes(stats_.reserved)));
    }
  }
  // Split off the remainder when it is worth keeping as a block of its own.
  const std::size_t min_remainder = small ? kRound : kSmallLimit;
  if (b->size - size >= min_remainder) {
    Block* rest = new Block;
    rest->ptr = b->ptr + size;
    rest->size = b->size - size;
    rest->small = small;
    rest->prev = b;
    rest->next = b->next;
    if (b->next != nullptr) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    pool.insert(rest);
  }
  b->allocated = true;
  allocated_.emplace(b->ptr, b);
  stats_.in_use += b->size;
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  stats_.cached = stats_.reserved - stats_.in_use;
  ++stats_.allocations;
  return b->ptr;
}

void CachingAllocator::deallocate(void* ptr, std::size_t /*bytes*/) noexcept {
  if (ptr == nullptr) return;
  std::lock_guard lock(mutex_);
  auto it = allocated_.find(ptr);
  if (it == allocated_.end()) return;  // not ours: ignoring beats corrupting the pools
  Block* b = it->second;
  allocated_.erase(it);
  b->allocated = false;
  stats_.in_use -= b->size;
  Pool& pool = b->small ? small_free_ : large_free_;
  if (b->prev != nullptr && !b->prev->allocated) {
    Block* p = b->prev;
    pool.erase(p);
    p->size += b->size;
    p->next = b->next;
    if (b->next != nullptr) b->next->prev = p;
    delete b;
    b = p;
  }
  if (b->next != nullptr && !b->next->allocated) {
    Block* n = b->next;
    pool.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next != nullptr) n->next->prev = b;
    delete n;
  }
  pool.insert(b);
  stats_.cached = stats_.reserved - stats_.in_use;
}

void CachingAllocator::release_free_segments() {
  for (Pool* pool : {&small_free_, &large_free_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev == nullptr && b->next == nullptr) {  // the whole segment is free
        auto seg = segments_.find(b->ptr);
        if (seg != segments_.end()) {
          source_->deallocate(seg->first, seg->second);
          stats_.reserved -= seg->second;
          segments_.erase(seg);
        }
        it = pool->erase(it);
        delete b;
      } else {
        ++it;
      }
    }
  }
  stats_.cached = stats_.reserved - stats_.in_use;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak_in_use = stats_.in_use;
  stats_.peak_reserved = stats_.reserved;
}

void CachingAllocator::release_cached() {
  std::lock_guard lock(mutex_);
  release_free_segments();
}

}  // namespace bignlp
