#include "bignlp/parallel/grad_buckets.h"

#include <algorithm>

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"

namespace bignlp::parallel {

GradBuckets::GradBuckets(comm::Communicator* dp, const ops::OpContext& ctx, std::vector<FlatRange> params,
                         std::int64_t bucket_numel, Mode mode)
    : dp_(dp != nullptr && dp->size() > 1 ? dp : nullptr), ctx_(ctx), mode_(mode) {
  BIGNLP_CHECK(bucket_numel > 0, "gradient bucket size must be positive, got {}", bucket_numel);
  for (std::size_t i = 1; i < params.size(); ++i) {
    BIGNLP_CHECK(params[i].begin == params[i - 1].end, "gradient buckets need parameters back to back in the buffer");
  }
  FlatRange current{-1, -1};
  std::vector<std::int64_t> members;
  auto close = [&] {
    if (members.empty()) return;
    const std::size_t b = buckets_.size();
    buckets_.push_back(current);
    for (std::int64_t off : members) bucket_of_[off] = b;
    params_in_bucket_.push_back(static_cast<int>(members.size()));
    members.clear();
  };
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->size() == 0) continue;
    if (!members.empty() && current.size() + it->size() > bucket_numel) close();
    if (members.empty()) current = *it;
    current.begin = it->begin;
    members.push_back(it->begin);
  }
  close();
  const int d = dp_size();
  for (const auto& b : buckets_) shard_size_.push_back((b.size() + d - 1) / d);
  ready_in_bucket_.assign(buckets_.size(), 0);
  launched_.assign(buckets_.size(), false);
  pending_.resize(buckets_.size());
  staging_.resize(2 * buckets_.size());
}

FlatRange GradBuckets::shard(std::size_t b, int rank) const {
  const FlatRange& bucket = buckets_.at(b);
  const std::int64_t s = shard_size_.at(b);
  const std::int64_t begin = std::min(bucket.end, bucket.begin + rank * s);
  return {begin, std::min(bucket.end, begin + s)};
}

std::vector<FlatRange> GradBuckets::owned_ranges() const {
  std::vector<FlatRange> out;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const FlatRange r = shard(b, dp_rank());
    if (r.size() > 0) out.push_back(r);
  }
  return out;
}

void GradBuckets::mark_ready(std::int64_t param_offset) {
  if (dp_ == nullptr) return;
  auto it = bucket_of_.find(param_offset);
  if (it == bucket_of_.end()) return;  // empty parameter
  const std::size_t b = it->second;
  if (++ready_in_bucket_[b] == params_in_bucket_[b] && !launched_[b]) {
    if (!finishing_) ++overlapped_;
    launch(b);
  }
}

void GradBuckets::launch(std::size_t b) {
  BIGNLP_CHECK(grad_.defined(), "gradient buckets: set_buffer() was not called");
  launched_[b] = true;
  const FlatRange& r = buckets_[b];
  const TensorView bucket = grad_.slice(0, r.begin, r.size());
  if (mode_ == Mode::kAllReduce) {
    pending_[b] = dp_->all_reduce_async(bucket, comm::ReduceOp::kAvg);
    return;
  }
  BIGNLP_CHECK(ctx_.allocator != nullptr, "gradient buckets: ctx.allocator is required for reduce-scatter");
  const int d = dp_->size();
  const std::int64_t s = shard_size_[b];
  TensorView in = bucket;
  if (r.size() != s * d) {
    staging_[2 * b] = Buffer(*ctx_.allocator, grad_.dtype(), Shape{s * d});
    ops::fill(ctx_, staging_[2 * b], 0.0);
    ops::copy(ctx_, bucket, staging_[2 * b].view().slice(0, 0, r.size()));
    in = staging_[2 * b].view();
  }
  staging_[2 * b + 1] = Buffer(*ctx_.allocator, grad_.dtype(), Shape{s});
  pending_[b] = dp_->reduce_scatter_async(in, staging_[2 * b + 1], comm::ReduceOp::kAvg);
}

void GradBuckets::finish() {
  if (dp_ == nullptr) return;
  finishing_ = true;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (!launched_[b]) launch(b);
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    pending_[b]->wait(dp_->timeout());
    pending_[b].reset();
    if (mode_ == Mode::kReduceScatter) {
      const FlatRange own = shard(b, dp_->rank());
      if (own.size() > 0) {
        ops::copy(ctx_, staging_[2 * b + 1].view().slice(0, 0, own.size()), grad_.slice(0, own.begin, own.size()));
      }
    }
    staging_[2 * b] = Buffer();
    staging_[2 * b + 1] = Buffer();
    launched_[b] = false;
    ready_in_bucket_[b] = 0;
  }
  overlapped_last_step_ = overlapped_;
  overlapped_ = 0;
  finishing_ = false;
}

void GradBuckets::all_gather_shards(const TensorView& flat) {
  if (dp_ == nullptr) return;
  BIGNLP_CHECK(ctx_.allocator != nullptr, "gradient buckets: ctx.allocator is required for all-gather");
  const int d = dp_->size();
  std::vector<Buffer> in(buckets_.size()), out(buckets_.size());
  std::vector<comm::WorkPtr> works(buckets_.size());
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const std::int64_t s = shard_size_[b];
    const FlatRange own = shard(b, dp_->rank());
    in[b] = Buffer(*ctx_.allocator, flat.dtype(), Shape{s});
    if (own.size() < s) ops::fill(ctx_, in[b], 0.0);
    if (own.size() > 0) ops::copy(ctx_, flat.slice(0, own.begin, own.size()), in[b].view().slice(0, 0, own.size()));
    out[b] = Buffer(*ctx_.allocator, flat.dtype(), Shape{s * d});
    works[b] = dp_->all_gather_async(in[b], out[b]);
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    works[b]->wait(dp_->timeout());
    const FlatRange& r = buckets_[b];
    ops::copy(ctx_, out[b].view().slice(0, 0, r.size()), flat.slice(0, r.begin, r.size()));
  }
}

}  // namespace bignlp::parallel
