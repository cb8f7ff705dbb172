// GradBuckets: data-parallel gradient reduction in buckets, overlapped with the backward pass.
//
// The fp32 flat gradient buffer of a model (parameters back to back in registration order) is cut
// into buckets of about `bucket_numel` elements, formed from the END of the buffer (the backward
// pass completes gradients in reverse registration order, so the first bucket to fill is the
// last in memory). A parameter never straddles two buckets (a parameter larger than the cap is a
// bucket of its own). As the backward pass reports parameters complete (mark_ready), a bucket
// whose parameters are all complete starts its reduction asynchronously on the DP communicator
// while the backward pass continues; finish() starts the rest and waits for all.
//
//   kAllReduce      every bucket is all-reduced with AVG: every rank ends with the averaged buffer
//                   (Megatron DDP / NeMo O2 all-reduce, divided by d)
//   kReduceScatter  bucket b of length L is split into d shards of ceil(L/d) elements; rank i ends
//                   with the averaged shard i (apex DistributedFusedAdam's layout, used by the
//                   distributed optimizer); the rest of the buffer holds stale local sums
//
// The layout (buckets, shards, a rank's owned ranges) is a pure function of the parameter ranges,
// the bucket size and (d, rank), also available without a communicator (layout(), owned_ranges()):
// the parameter store uses it to keep fp32 master weights only for the ranges the optimizer owns.
// Worked example: parameters of 4, 3, 10, 2, 2 elements, buckets of 5 -> from the end [17, 21),
// [7, 17), [4, 7), [0, 4); with d = 2 bucket [7, 17) has shards [7, 12) (rank 0) and [12, 17).
//
// A bucket whose length is a multiple of d is reduce-scattered and all-gathered in place (the
// rank's shard is its own chunk of the bucket). Any other bucket is staged in separate buffers (a
// padded copy and the reduced shard; the shard and the gathered bucket), and at most
// kMaxStagedBuckets buckets hold staging at a time: the oldest completes before another starts, so
// the transient memory is a few buckets, not a copy of the model.
//
// Parameters whose gradients need another reduction first (sequence-parallel LayerNorms, the
// tied embedding) are marked ready by the caller after that reduction, so their buckets start
// later. With one DP rank (dp == null) nothing is communicated.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/parallel/flat_range.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::parallel {

class GradBuckets {
 public:
  enum class Mode { kAllReduce, kReduceScatter };

  /// The buckets of `params` (ranges back to back, registration order) for a cap of
  /// `bucket_numel` elements, in launch order (from the end of the buffer); empty parameters are
  /// skipped and a parameter never straddles two buckets.
  static std::vector<FlatRange> layout(const std::vector<FlatRange>& params, std::int64_t bucket_numel);
  /// Shard `rank` of `bucket` split over `dp_size` ranks: ceil(L/d) elements from
  /// bucket.begin + rank * ceil(L/d), clipped to the bucket (possibly empty).
  static FlatRange shard_of(const FlatRange& bucket, int dp_size, int rank);
  /// The shards rank `dp_rank` owns in every bucket of layout(params, bucket_numel), in bucket
  /// order, empty shards left out: what owned_ranges() returns for that rank.
  static std::vector<FlatRange> owned_ranges(const std::vector<FlatRange>& params, std::int64_t bucket_numel,
                                             int dp_size, int dp_rank);
  /// Buckets whose reduce-scatter or all-gather may hold staging buffers at the same time.
  static constexpr std::size_t kMaxStagedBuckets = 2;

  /// params: the parameters' ranges in the flat buffer, in registration order, back to back.
  GradBuckets(comm::Communicator* dp, const ops::OpContext& ctx, std::vector<FlatRange> params,
              std::int64_t bucket_numel, Mode mode);

  /// The gradient buffer of this step (fp32, the params' total size).
  void set_buffer(const TensorView& flat_grad) { grad_ = flat_grad; }
  /// Parameter (by its flat offset) is complete for this step; may start its bucket's reduction.
  void mark_ready(std::int64_t param_offset);
  /// Starts every bucket not started yet, waits for all, and resets for the next step.
  void finish();

  /// The buckets, in launch order (from the end of the buffer).
  const std::vector<FlatRange>& buckets() const { return buckets_; }
  /// Shard `rank` of bucket `b` (kReduceScatter layout); may be empty at the end of a bucket.
  FlatRange shard(std::size_t b, int rank) const;
  /// This rank's shards of every bucket (the elements its optimizer owns), in bucket order.
  std::vector<FlatRange> owned_ranges() const;
  /// Buckets whose reduction started during the backward pass in the last step (a measure of overlap).
  int overlapped_last_step() const { return overlapped_last_step_; }
  int dp_size() const { return dp_ != nullptr ? dp_->size() : 1; }
  int dp_rank() const { return dp_ != nullptr ? dp_->rank() : 0; }

  /// All-gathers every bucket's shards of `flat` (fp32 or the compute dtype, laid out like the
  /// gradients) so every rank holds the whole buffer: the distributed optimizer's parameter sync.
  void all_gather_shards(const TensorView& flat);
  /// Assembles a whole flat buffer from compact shards: `local` (on the context's device) holds
  /// this rank's owned_ranges() back to back; `full` (the flat size, host or device memory, same
  /// dtype) receives every rank's shards at their places, or is empty on a rank that only sends.
  /// One bucket at a time, so the device staging never exceeds one bucket (checkpoint saves of the
  /// distributed optimizer's state). Collective over the DP group; with one rank a plain copy.
  void gather_shards(const TensorView& local, const TensorView& full);

 private:
  void launch(std::size_t b);
  /// Waits for bucket b's reduction; reduce-scatter: copies the shard back, frees its staging.
  void complete(std::size_t b);

  comm::Communicator* dp_;
  ops::OpContext ctx_;
  Mode mode_;
  TensorView grad_;
  std::vector<FlatRange> buckets_;
  std::map<std::int64_t, std::size_t> bucket_of_;  // param offset -> bucket
  std::vector<int> params_in_bucket_, ready_in_bucket_;
  std::vector<bool> launched_;
  std::vector<comm::WorkPtr> pending_;
  std::vector<Buffer> staging_;  // padded copies / outputs of staged reduce-scatters
  std::vector<std::size_t> staged_;  // reduce-scatters holding staging, oldest first
  std::vector<std::int64_t> shard_size_;
  int overlapped_ = 0, overlapped_last_step_ = 0;
  bool finishing_ = false;
};

}  // namespace bignlp::parallel
