// FlatRange: a half-open range [begin, end) of elements of a flat buffer.
//
// Parameters lie back to back in the flat buffers of a model::ParameterStore; gradient buckets,
// the distributed optimizer's shards and the fp32 master weights a store keeps are described by
// ranges of those buffers (parallel::GradBuckets, model::ParameterStore).
#pragma once

#include <cstdint>

namespace bignlp::parallel {

/// [begin, end) elements of a flat buffer.
struct FlatRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  /// The common part of two ranges (empty, begin == end, when they do not overlap).
  FlatRange intersect(const FlatRange& o) const {
    const std::int64_t b = begin > o.begin ? begin : o.begin;
    const std::int64_t e = end < o.end ? end : o.end;
    return b < e ? FlatRange{b, e} : FlatRange{b, b};
  }
  friend bool operator==(const FlatRange&, const FlatRange&) = default;
};

}  // namespace bignlp::parallel
