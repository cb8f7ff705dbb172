#include "bignlp/parallel/grad_buckets.h"

#include <algorithm>
#include <deque>

#include "bignlp/core/check.h"
#include "bignlp/ops/ops.h"

namespace bignlp::parallel {

std::vector<FlatRange> GradBuckets::layout(const std::vector<FlatRange>& params, std::int64_t bucket_numel) {
  BIGNLP_CHECK(bucket_numel > 0, "gradient bucket size must be positive, got {}", bucket_numel);
  for (std::size_t i = 1; i < params.size(); ++i) {
    BIGNLP_CHECK(params[i].begin == params[i - 1].end, "gradient buckets need parameters back to back in the buffer");
  }
  std::vector<FlatRange> buckets;
  FlatRange current{-1, -1};
  bool open = false;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->size() == 0) continue;
    if (open && current.size() + it->size() > bucket_numel) {
      buckets.push_back(current);
      open = false;
    }
    if (!open) current = *it;
    current.begin = it->begin;
    open = true;
  }
  if (open) buckets.push_back(current);
  return buckets;
}

FlatRange GradBuckets::shard_of(const FlatRange& bucket, int dp_size, int rank) {
  const std::int64_t s = (bucket.size() + dp_size - 1) / dp_size;
  const std::int64_t begin = std::min(bucket.end, bucket.begin + rank * s);
  return {begin, std::min(bucket.end, begin + s)};
}

std::vector<FlatRange> GradBuckets::owned_ranges(const std::vector<FlatRange>& params, std::int64_t bucket_numel,
                                                 int dp_size, int dp_rank) {
  std::vector<FlatRange> out;
  for (const FlatRange& b : layout(params, bucket_numel)) {
    const FlatRange r = shard_of(b, dp_size, dp_rank);
    if (r.size() > 0) out.push_back(r);
  }
  return out;
}

GradBuckets::GradBuckets(comm::Communicator* dp, const ops::OpContext& ctx, std::vector<FlatRange> params,
                         std::int64_t bucket_numel, Mode mode)
    : dp_(dp != nullptr && dp->size() > 1 ? dp : nullptr), ctx_(ctx), mode_(mode) {
  buckets_ = layout(params, bucket_numel);
  // Every non-empty parameter lies in exactly one bucket.
  std::size_t b = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->size() == 0) continue;
    while (it->begin < buckets_[b].begin) ++b;
    bucket_of_[it->begin] = b;
  }
  params_in_bucket_.assign(buckets_.size(), 0);
  for (const auto& [offset, bucket] : bucket_of_) ++params_in_bucket_[bucket];
  const int d = dp_size();
  for (const auto& bucket : buckets_) shard_size_.push_back((bucket.size() + d - 1) / d);
  ready_in_bucket_.assign(buckets_.size(), 0);
  launched_.assign(buckets_.size(), false);
  pending_.resize(buckets_.size());
  staging_.resize(2 * buckets_.size());
}

FlatRange GradBuckets::shard(std::size_t b, int rank) const { return shard_of(buckets_.at(b), dp_size(), rank); }

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
  const int d = dp_->size();
  const std::int64_t s = shard_size_[b];
  if (r.size() == s * d) {
    // Every shard is full: in place, the rank's averaged shard lands where it lies in the bucket.
    pending_[b] = dp_->reduce_scatter_async(bucket, grad_.slice(0, shard(b, dp_->rank()).begin, s),
                                            comm::ReduceOp::kAvg);
    return;
  }
  BIGNLP_CHECK(ctx_.allocator != nullptr, "gradient buckets: ctx.allocator is required for reduce-scatter");
  // Staging is bounded: the oldest reduction completes before a bucket beyond the window starts.
  while (staged_.size() >= kMaxStagedBuckets) complete(staged_.front());
  TensorView in = bucket;
  if (r.size() != s * d) {
    staging_[2 * b] = Buffer(*ctx_.allocator, grad_.dtype(), Shape{s * d});
    ops::fill(ctx_, staging_[2 * b], 0.0);
    ops::copy(ctx_, bucket, staging_[2 * b].view().slice(0, 0, r.size()));
    in = staging_[2 * b].view();
  }
  staging_[2 * b + 1] = Buffer(*ctx_.allocator, grad_.dtype(), Shape{s});
  pending_[b] = dp_->reduce_scatter_async(in, staging_[2 * b + 1], comm::ReduceOp::kAvg);
  staged_.push_back(b);
}

void GradBuckets::complete(std::size_t b) {
  pending_[b]->wait(dp_->timeout());
  pending_[b].reset();
  if (mode_ == Mode::kReduceScatter && staging_[2 * b + 1].defined()) {
    const FlatRange own = shard(b, dp_->rank());
    if (own.size() > 0)
      ops::copy(ctx_, staging_[2 * b + 1].view().slice(0, 0, own.size()), grad_.slice(0, own.begin, own.size()));
    staging_[2 * b] = Buffer();
    staging_[2 * b + 1] = Buffer();
    staged_.erase(std::find(staged_.begin(), staged_.end(), b));
  }
}

void GradBuckets::finish() {
  if (dp_ == nullptr) return;
  finishing_ = true;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (!launched_[b]) launch(b);
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (pending_[b]) complete(b);
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
  struct InFlight {
    std::size_t bucket;
    Buffer in, out;
    comm::WorkPtr work;
  };
  std::deque<InFlight> window;  // at most kMaxStagedBuckets gathers hold staging at a time
  std::vector<comm::WorkPtr> in_place;
  const auto land = [&] {
    InFlight& f = window.front();
    f.work->wait(dp_->timeout());
    const FlatRange& r = buckets_[f.bucket];
    ops::copy(ctx_, f.out.view().slice(0, 0, r.size()), flat.slice(0, r.begin, r.size()));
    window.pop_front();
  };
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const std::int64_t s = shard_size_[b];
    const FlatRange own = shard(b, dp_->rank());
    const FlatRange& r = buckets_[b];
    if (r.size() == s * d) {  // every shard full: gathered in place
      in_place.push_back(dp_->all_gather_async(flat.slice(0, own.begin, s), flat.slice(0, r.begin, r.size())));
      continue;
    }
    if (window.size() >= kMaxStagedBuckets) land();
    InFlight f{b, Buffer(*ctx_.allocator, flat.dtype(), Shape{s}), Buffer(*ctx_.allocator, flat.dtype(), Shape{s * d}),
               nullptr};
    if (own.size() < s) ops::fill(ctx_, f.in, 0.0);
    if (own.size() > 0) ops::copy(ctx_, flat.slice(0, own.begin, own.size()), f.in.view().slice(0, 0, own.size()));
    f.work = dp_->all_gather_async(f.in, f.out);
    window.push_back(std::move(f));
  }
  while (!window.empty()) land();
  for (auto& w : in_place) w->wait(dp_->timeout());
}

void GradBuckets::gather_shards(const TensorView& local, const TensorView& full) {
  std::int64_t owned = 0;
  for (const FlatRange& r : owned_ranges()) owned += r.size();
  BIGNLP_CHECK(local.numel() == owned && local.is_contiguous(),
               "gather_shards: local holds {} elements, this rank owns {}", local.numel(), owned);
  BIGNLP_CHECK(!full.defined() || (full.dtype() == local.dtype() && full.is_contiguous() && full.rank() == 1),
               "gather_shards: full must be a flat contiguous {} tensor, got {}", dtype_name(local.dtype()),
               full.to_string());
  if (dp_ == nullptr) {
    // One rank owns every bucket whole: its compact shards are the buckets in launch order.
    std::int64_t off = 0;
    for (const FlatRange& r : buckets_) {
      if (full.defined()) ops::copy(ctx_, local.slice(0, off, r.size()), full.slice(0, r.begin, r.size()));
      off += r.size();
    }
    return;
  }
  BIGNLP_CHECK(ctx_.allocator != nullptr, "gradient buckets: ctx.allocator is required for all-gather");
  const int d = dp_->size();
  std::int64_t off = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const std::int64_t s = shard_size_[b];
    const FlatRange own = shard(b, dp_->rank());
    Buffer in(*ctx_.allocator, local.dtype(), Shape{s});
    if (own.size() < s) ops::fill(ctx_, in, 0.0);
    if (own.size() > 0) ops::copy(ctx_, local.slice(0, off, own.size()), in.view().slice(0, 0, own.size()));
    off += own.size();
    Buffer out(*ctx_.allocator, local.dtype(), Shape{s * d});
    dp_->all_gather(in, out);
    const FlatRange& r = buckets_[b];
    if (full.defined()) ops::copy(ctx_, out.view().slice(0, 0, r.size()), full.slice(0, r.begin, r.size()));
  }
}

}  // namespace bignlp::parallel
