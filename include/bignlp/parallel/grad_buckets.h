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
// Parameters whose gradients need another reduction first (sequence-parallel LayerNorms, the
// tied embedding) are marked ready by the caller after that reduction, so their buckets start
// later. With one DP rank (dp == null) nothing is communicated.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "bignlp/comm/communicator.h"
#include "bignlp/ops/context.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::parallel {

/// [begin, end) elements of the flat buffer.
struct FlatRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  friend bool operator==(const FlatRange&, const FlatRange&) = default;
};

class GradBuckets {
 public:
  enum class Mode { kAllReduce, kReduceScatter };

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

 private:
  void launch(std::size_t b);

  comm::Communicator* dp_;
  ops::OpContext ctx_;
  Mode mode_;
  TensorView grad_;
  std::vector<FlatRange> buckets_;
  std::map<std::int64_t, std::size_t> bucket_of_;  // param offset -> bucket
  std::vector<int> params_in_bucket_, ready_in_bucket_;
  std::vector<bool> launched_;
  std::vector<comm::WorkPtr> pending_;
  std::vector<Buffer> staging_;  // padded copies / outputs of reduce-scatter
  std::vector<std::int64_t> shard_size_;
  int overlapped_ = 0, overlapped_last_step_ = 0;
  bool finishing_ = false;
};

}  // namespace bignlp::parallel
