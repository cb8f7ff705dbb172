// CachingAllocator policy on a fake memory source (host memory with a capacity and counters), so
// the bookkeeping the CUDA allocator relies on is tested without a GPU.
#include "bignlp/tensor/caching_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>
#include <vector>

#include "bignlp/core/error.h"

namespace bignlp {
namespace {

class FakeSource final : public MemorySource {
 public:
  explicit FakeSource(std::size_t capacity) : capacity_(capacity) {}
  ~FakeSource() override { EXPECT_EQ(live, 0u) << "segments leaked"; }
  Device device() const override { return Device::cuda(0); }
  void* allocate(std::size_t bytes) override {
    if (used + bytes > capacity_) return nullptr;
    void* p = std::aligned_alloc(256, bytes);
    used += bytes;
    ++allocations;
    ++live;
    return p;
  }
  void deallocate(void* ptr, std::size_t bytes) noexcept override {
    std::free(ptr);
    used -= bytes;
    ++frees;
    --live;
  }
  std::size_t used = 0, allocations = 0, frees = 0, live = 0;

 private:
  std::size_t capacity_;
};

struct Harness {
  explicit Harness(std::size_t capacity = std::size_t{1} << 32) {
    auto s = std::make_unique<FakeSource>(capacity);
    source = s.get();
    alloc = std::make_unique<CachingAllocator>(std::move(s));
  }
  FakeSource* source;
  std::unique_ptr<CachingAllocator> alloc;
};

TEST(CachingAllocatorTest, RoundingAndSegmentSizes) {
  EXPECT_EQ(CachingAllocator::rounded_size(1), 512u);
  EXPECT_EQ(CachingAllocator::rounded_size(512), 512u);
  EXPECT_EQ(CachingAllocator::rounded_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::segment_size(512), 2u << 20);
  EXPECT_EQ(CachingAllocator::segment_size(1u << 20), 2u << 20);
  EXPECT_EQ(CachingAllocator::segment_size((1u << 20) + 512), 20u << 20);
  EXPECT_EQ(CachingAllocator::segment_size(10u << 20), 20u << 20);
  EXPECT_EQ(CachingAllocator::segment_size((10u << 20) + 512), 12u << 20);  // rounded to 2 MiB
}

TEST(CachingAllocatorTest, SmallBlocksShareOneSegmentAndAreReused) {
  Harness h;
  std::vector<void*> ptrs;
  for (int i = 0; i < 100; ++i) ptrs.push_back(h.alloc->allocate(1000));  // 1024 each
  EXPECT_EQ(h.source->allocations, 1u);
  EXPECT_EQ(h.alloc->stats().in_use, 100u * 1024);
  for (void* p : ptrs) h.alloc->deallocate(p, 1000);
  EXPECT_EQ(h.alloc->stats().in_use, 0u);
  EXPECT_EQ(h.alloc->stats().cached, 2u << 20);
  // The whole segment merged back: a request of the full segment size fits without a new segment.
  void* big = h.alloc->allocate(1u << 20);
  EXPECT_EQ(h.source->allocations, 1u);
  h.alloc->deallocate(big, 1u << 20);
}

TEST(CachingAllocatorTest, RepeatedTrainingStepsStopCallingTheSource) {
  // A "step" allocates activations of a fixed pattern of sizes, frees them in another order.
  Harness h;
  const std::vector<std::size_t> sizes{3u << 20, 96u << 10, 12u << 20, 700, 48u << 20, 3u << 20, 64, 25u << 20};
  auto step = [&] {
    std::vector<std::pair<void*, std::size_t>> live;
    for (std::size_t s : sizes) live.emplace_back(h.alloc->allocate(s), s);
    std::reverse(live.begin() + 2, live.end());
    for (auto& [p, s] : live) h.alloc->deallocate(p, s);
  };
  step();
  const std::size_t after_first = h.source->allocations;
  const AllocatorStats s1 = h.alloc->stats();
  EXPECT_EQ(s1.system_allocations, after_first);
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(h.source->allocations, after_first) << "no system allocation after the first step";
  EXPECT_EQ(h.alloc->stats().system_allocations, after_first);
  EXPECT_EQ(h.alloc->stats().allocations, 6 * sizes.size());
  EXPECT_EQ(h.alloc->stats().reserved, s1.reserved);
}

TEST(CachingAllocatorTest, BlocksNeverOverlapUnderRandomTraffic) {
  Harness h;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<std::size_t> small(1, 1u << 20), large((1u << 20) + 1, 24u << 20);
  struct Live {
    char* p;
    std::size_t bytes;
    unsigned char tag;
  };
  std::vector<Live> live;
  std::size_t peak = 0, in_use = 0;
  for (int it = 0; it < 1500; ++it) {
    if (!live.empty() && kind(rng) < 4) {
      const std::size_t i = rng() % live.size();
      // The block still holds its tag: nobody else wrote into it.
      for (std::size_t k = 0; k < live[i].bytes; k += 4093) ASSERT_EQ(static_cast<unsigned char>(live[i].p[k]), live[i].tag);
      ASSERT_EQ(static_cast<unsigned char>(live[i].p[live[i].bytes - 1]), live[i].tag);
      in_use -= CachingAllocator::rounded_size(live[i].bytes);
      h.alloc->deallocate(live[i].p, live[i].bytes);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      const std::size_t bytes = kind(rng) < 8 ? small(rng) : large(rng);
      char* p = static_cast<char*>(h.alloc->allocate(bytes));
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 256, 0u) << "blocks are 256-byte aligned";
      const unsigned char tag = static_cast<unsigned char>(it);
      for (std::size_t k = 0; k < bytes; k += 4093) p[k] = static_cast<char>(tag);  // sampled: the blocks are large
      p[bytes - 1] = static_cast<char>(tag);
      live.push_back({p, bytes, tag});
      in_use += CachingAllocator::rounded_size(bytes);
      peak = std::max(peak, in_use);
    }
    // A large block keeps an unsplit remainder below 1 MiB; small blocks are exact.
    std::size_t large_live = 0;
    for (const auto& l : live) large_live += CachingAllocator::rounded_size(l.bytes) > CachingAllocator::kSmallLimit;
    ASSERT_GE(h.alloc->stats().in_use, in_use);
    ASSERT_LT(h.alloc->stats().in_use, in_use + large_live * CachingAllocator::kSmallLimit + 1);
  }
  // Pairwise disjoint.
  std::vector<std::pair<char*, char*>> ranges;
  for (auto& l : live) ranges.emplace_back(l.p, l.p + l.bytes);
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
  EXPECT_GE(h.alloc->stats().peak_in_use, peak);
  for (auto& l : live) h.alloc->deallocate(l.p, l.bytes);
  EXPECT_EQ(h.alloc->stats().in_use, 0u);
  h.alloc->release_cached();
  EXPECT_EQ(h.source->live, 0u) << "every segment is free again and returned";
  EXPECT_EQ(h.alloc->stats().reserved, 0u);
}

TEST(CachingAllocatorTest, ExhaustionReleasesCachedSegmentsThenThrowsWithStatistics) {
  Harness h(64u << 20);
  void* a = h.alloc->allocate(40u << 20);
  h.alloc->deallocate(a, 40u << 20);  // cached, 40 MiB of the 64 MiB held
  void* b = h.alloc->allocate(50u << 20);  // needs the cached segment returned first
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(h.source->frees, 1u);
  try {
    h.alloc->allocate(30u << 20);
    FAIL() << "expected an out-of-memory error";
  } catch (const RuntimeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of memory on cuda:0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
  }
  h.alloc->deallocate(b, 50u << 20);
}

TEST(CachingAllocatorTest, PeakAndResetAndForeignPointers) {
  Harness h;
  void* a = h.alloc->allocate(5u << 20);
  void* b = h.alloc->allocate(5u << 20);
  h.alloc->deallocate(a, 5u << 20);
  EXPECT_EQ(h.alloc->stats().peak_in_use, 10u << 20);
  h.alloc->reset_peak();
  EXPECT_EQ(h.alloc->stats().peak_in_use, 5u << 20);
  int local = 0;
  h.alloc->deallocate(&local, sizeof local);  // not from this allocator: ignored
  EXPECT_EQ(h.alloc->stats().in_use, 5u << 20);
  h.alloc->deallocate(b, 5u << 20);
  EXPECT_EQ(h.alloc->allocate(0), nullptr);
}

}  // namespace
}  // namespace bignlp

namespace bignlp {
namespace {

TEST(CpuAllocatorTest, CountsSystemAllocationsAndReservedBytes) {
  CpuAllocator alloc;
  void* a = alloc.allocate(2u << 20);  // cached size class
  alloc.deallocate(a, 2u << 20);
  void* b = alloc.allocate(2u << 20);  // served from the cache
  const AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.system_allocations, 1u);
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(s.reserved, 2u << 20);
  alloc.deallocate(b, 2u << 20);
  alloc.release_cached();
  EXPECT_EQ(alloc.stats().reserved, 0u);
  EXPECT_EQ(alloc.stats().peak_reserved, 2u << 20);
}

}  // namespace
}  // namespace bignlp
