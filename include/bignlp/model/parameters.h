// ParameterStore: every trainable tensor of a model, in one flat list over contiguous buffers.
//
// Layers register their parameters (name, shape, init, decay, TP partition) at construction; then
// allocate() lays them out back to back (registration order) in flat buffers:
//   value  (A)      the compute copy forward/backward read, always complete: bf16/fp16 under mixed
//                   precision; at fp32 these are the weights themselves,
//   grad   (fp32)   gradients; ops accumulate into it over micro-batches (zero_grad per step),
//   master (fp32)   the weights the optimizer updates. At fp32 there is no separate buffer: the
//                   master weights are the compute copy. Under mixed precision a separate fp32
//                   buffer holds either every element (the replicated optimizer, and every store
//                   outside training) or only given flat ranges, back to back (the distributed
//                   optimizer's shards of this data-parallel rank, parallel::GradBuckets' layout);
//                   the compute copy of the other elements comes from the other ranks' updates.
// Writers go through assign() (full fp32 values of one parameter: the kept master elements and the
// rounded compute copy), so code that loads or initialises weights need not know the placement.
// The optimizer, gradient clipping, data-parallel reduction and checkpoints work on these flat
// buffers (or per-parameter views into them).
// Names are the NeMo state-dict keys (model.language_model.encoder.layers.0.mlp.dense_h_to_4h.weight).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <functional>
#include <optional>

#include "bignlp/ops/context.h"
#include "bignlp/parallel/flat_range.h"
#include "bignlp/tensor/buffer.h"

namespace bignlp::model {

/// How a parameter starts.
enum class ParamInit {
  kNormal,  ///< N(0, init_std^2) from the Philox stream of the parameter (see ParameterStore::initialize)
  kZeros,
  kOnes,
};

struct Parameter {
  std::string name;     ///< NeMo state-dict key
  Shape shape;          ///< this rank's shape
  ParamInit init = ParamInit::kZeros;
  float init_std = 0.0f;
  bool weight_decay = true;  ///< false for biases and LayerNorm parameters (NeMo's no-decay group)
  int partition_dim = -1;    ///< tensor-parallel split dimension (0 column/vocab, 1 row), -1 replicated
  int tp_rank = 0;           ///< which shard this rank holds (with partition_dim >= 0)
  int tp_size = 1;
  /// The gradient is a partial sum over TP ranks (LayerNorm under sequence parallelism: each rank
  /// sees only its sequence slice) and is all-reduced over TP before the optimizer.
  bool sequence_parallel = false;
  /// A duplicate of a parameter held elsewhere (the last pipeline stage's copy of the tied word
  /// embedding): kept equal by an all-reduce of its gradient, not counted in the gradient norm.
  bool shared = false;
  std::int64_t offset = 0;   ///< element offset in the flat buffers
  TensorView value;          ///< (shape) compute dtype
  TensorView master;         ///< (shape) fp32; empty when the store keeps master shards only
  TensorView grad;           ///< (shape) fp32

  std::int64_t numel() const { return shape.numel(); }
  /// Split over tensor-parallel ranks (each rank holds a different shard).
  bool tensor_parallel() const { return partition_dim >= 0 && tp_size > 1; }
};

/// A fix-up of one parameter's freshly drawn full fp32 weights (on the store's device) before they
/// are stored (ParameterStore::initialize): a collective such as the tied embedding's all-reduce.
struct InitFixup {
  const Parameter* param = nullptr;
  std::function<void(const TensorView&)> apply;
};

class ParameterStore {
 public:
  ParameterStore() = default;
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  /// Registers a parameter; the returned reference stays valid for the store's lifetime. Throws
  /// RuntimeError for a duplicate name or after allocate().
  Parameter& add(Parameter spec);

  /// Allocates the flat buffers on allocator.device(): grad fp32, value in `compute`, and under
  /// mixed precision the fp32 master weights: of every element, or only of `master_ranges`
  /// (disjoint, non-empty, in the order their elements lie back to back in flat_master()). At fp32
  /// the master weights are the compute copy and `master_ranges` is ignored. Contents are
  /// uninitialised until initialize(), assign() or a checkpoint load.
  void allocate(Allocator& allocator, DType compute,
                std::optional<std::vector<parallel::FlatRange>> master_ranges = std::nullopt);

  /// Draws every parameter from its init rule: kNormal element i of the FULL (unsharded) tensor is
  /// philox_normal(seed, fnv1a64(name), i) * init_std, so a tensor-parallel shard holds exactly its
  /// part of the single-rank weights. Writes the master weights kept and the compute copy.
  /// Host-side generation, then copied (through a device buffer of its size for the fixed-up
  /// parameter when the store keeps master shards).
  void initialize(const ops::OpContext& ctx, std::uint64_t seed, const InitFixup& fixup = InitFixup{});
  /// Sets parameter `p` from its full fp32 weights `src` (p's shape or numel, host or device
  /// memory): the master elements this store keeps and the compute copy (rounded to its dtype).
  void assign(const ops::OpContext& ctx, Parameter& p, const TensorView& src);

  /// Sets every gradient to 0.
  void zero_grad(const ops::OpContext& ctx);
  /// value <- master (rounded to the compute dtype); no-op at fp32. Needs master_complete().
  void sync_values_from_master(const ops::OpContext& ctx);

  std::deque<Parameter>& params() { return params_; }
  const std::deque<Parameter>& params() const { return params_; }
  /// The parameter called `name`, or nullptr.
  Parameter* find(const std::string& name);
  std::int64_t numel() const { return numel_; }
  DType compute_dtype() const { return compute_; }
  bool allocated() const { return allocated_; }
  TensorView flat_grad() const { return grad_.view(); }
  /// The compute copy (the weights themselves at fp32).
  TensorView flat_value() const { return value_.view(); }
  /// True when the store keeps the fp32 master weights of every element (always at fp32).
  bool master_complete() const { return master_complete_; }
  /// The flat ranges whose master weights the store keeps, in flat_master() order ({[0, numel)}
  /// when complete).
  const std::vector<parallel::FlatRange>& master_ranges() const { return master_ranges_; }
  /// The kept master weights back to back: the whole flat fp32 master when complete (the compute
  /// copy at fp32), else the elements of master_ranges() in that order.
  TensorView flat_master() const;
  /// The master weights of `r`, which must lie inside one kept range.
  TensorView master_range(const parallel::FlatRange& r) const;
  /// Bytes of the flat buffers (value, grad and a separate master buffer).
  std::size_t bytes() const { return value_.nbytes() + grad_.nbytes() + master_.nbytes(); }

 private:
  std::deque<Parameter> params_;
  std::int64_t numel_ = 0;
  bool allocated_ = false;
  DType compute_ = DType::kF32;
  bool master_complete_ = true;
  std::vector<parallel::FlatRange> master_ranges_;
  std::vector<std::int64_t> master_offsets_;  // start of each kept range in master_ (or value_ at fp32)
  Buffer master_, grad_, value_;  // master_ is empty at fp32 (the compute copy is the master)
};

/// 64-bit FNV-1a hash (the Philox stream id of a parameter name).
std::uint64_t fnv1a64(const std::string& text);

}  // namespace bignlp::model
