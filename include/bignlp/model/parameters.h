// ParameterStore: every weight tensor of a model, in one flat list over contiguous buffers.
//
// Layers register their parameters (name, shape, init, decay, TP partition) at construction. A
// parameter is trainable (the default) or frozen (set_trainable, before allocate(): e.g. the GPT
// base of prompt learning). The parameters are laid out back to back, the TRAINABLE ones first,
// then the frozen ones, each group in registration order (with every parameter trainable: plain
// registration order). With N = numel() and Nt = trainable_numel(), allocate() makes:
//   value   (A, N)      the compute copy forward/backward read, always complete: bf16/fp16 under
//                       mixed precision; at fp32 these are the weights themselves,
//   grad    (fp32, Nt)  gradients of the trainable parameters; ops accumulate into it over
//                       micro-batches (zero_grad per step),
//   master  (fp32)      the weights the optimizer updates, trainable parameters only. At fp32 there
//                       is no separate buffer: the master weights are value's first Nt elements.
//                       Under mixed precision a separate fp32 buffer holds either every trainable
//                       element (the replicated optimizer, and every store outside training) or
//                       only given flat ranges inside [0, Nt), back to back (the distributed
//                       optimizer's shards of this data-parallel rank, parallel::GradBuckets'
//                       layout); the compute copy of the other elements comes from the other
//                       ranks' updates,
//   scratch (fp32, largest frozen parameter; none without frozen parameters) the `grad` view of
//                       EVERY frozen parameter. The linear layers, the output layer and the
//                       embeddings skip the gradient work of frozen weights; the norms still write
//                       theirs here, where they are never read (frozen parameters alias one
//                       scratch, so its contents are meaningless).
// So a frozen parameter costs its compute copy only: no gradient, master or optimizer memory.
// Everything that works on flat ranges (the optimizer, gradient clipping, data-parallel buckets,
// the distributed optimizer's shards, checkpoint moments) works on [0, Nt), trainable_ranges().
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
  /// Updated by the optimizer. A frozen parameter (false) keeps its weights: it has no gradient in
  /// the flat buffer, no master weights and no optimizer state (see ParameterStore).
  bool trainable = true;
  std::int64_t offset = 0;   ///< element offset in the flat buffers (trainable parameters first)
  TensorView value;          ///< (shape) compute dtype
  TensorView master;         ///< (shape) fp32; empty for frozen parameters and when the store
                             ///< keeps master shards only
  TensorView grad;           ///< (shape) fp32; frozen parameters: the shared scratch (write-only)

  std::int64_t numel() const { return shape.numel(); }
  /// Split over tensor-parallel ranks (each rank holds a different shard).
  bool tensor_parallel() const { return partition_dim >= 0 && tp_size > 1; }
};

/// Decides a property of a parameter from its registration (name, shape, ...).
using ParameterPredicate = std::function<bool(const Parameter&)>;

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

  /// Registers a parameter (trainable unless spec.trainable is false); the returned reference
  /// stays valid for the store's lifetime. Throws RuntimeError for a duplicate name or after
  /// allocate().
  Parameter& add(Parameter spec);
  /// Marks each parameter registered so far trainable or frozen by `trainable(p)` and lays the
  /// offsets out again (trainable first). Before allocate(); throws RuntimeError after.
  /// Example: store.set_trainable([](const Parameter& p) { return p.name.rfind("prompt.", 0) == 0; }).
  void set_trainable(const ParameterPredicate& trainable);

  /// Allocates the flat buffers on allocator.device() (see the file comment): value in `compute`,
  /// grad fp32 for the trainable elements, the frozen parameters' gradient scratch, and under
  /// mixed precision the fp32 master weights: of every trainable element, or only of
  /// `master_ranges` (disjoint, non-empty, inside [0, trainable_numel()), in the order their
  /// elements lie back to back in flat_master()). At fp32 the master weights are the compute copy
  /// and `master_ranges` is ignored. Contents are uninitialised until initialize(), assign() or a
  /// checkpoint load.
  void allocate(Allocator& allocator, DType compute,
                std::optional<std::vector<parallel::FlatRange>> master_ranges = std::nullopt);

  /// Draws every parameter from its init rule: kNormal element i of the FULL (unsharded) tensor is
  /// philox_normal(seed, fnv1a64(name), i) * init_std, so a tensor-parallel shard holds exactly its
  /// part of the single-rank weights. Writes the master weights kept and the compute copy.
  /// Host-side generation, then copied (through a device buffer of its size for the fixed-up
  /// parameter when the store keeps master shards).
  void initialize(const ops::OpContext& ctx, std::uint64_t seed, const InitFixup& fixup = InitFixup{});
  /// Sets parameter `p` from its full fp32 weights `src` (p's shape or numel, host or device
  /// memory): the master elements this store keeps and the compute copy (rounded to its dtype;
  /// the compute copy only for a frozen parameter).
  void assign(const ops::OpContext& ctx, Parameter& p, const TensorView& src);

  /// Sets every gradient to 0.
  void zero_grad(const ops::OpContext& ctx);
  /// value <- master (rounded to the compute dtype) for the trainable elements; no-op at fp32.
  /// Needs master_complete().
  void sync_values_from_master(const ops::OpContext& ctx);

  std::deque<Parameter>& params() { return params_; }
  const std::deque<Parameter>& params() const { return params_; }
  /// The parameter called `name`, or nullptr.
  Parameter* find(const std::string& name);
  std::int64_t numel() const { return numel_; }
  /// Elements of the trainable parameters: the flat gradient (and master) layout is [0, this).
  std::int64_t trainable_numel() const { return trainable_numel_; }
  /// The trainable parameters' flat ranges, registration order, back to back from 0 (what the
  /// data-parallel buckets and the distributed optimizer's shards are built from).
  std::vector<parallel::FlatRange> trainable_ranges() const;
  DType compute_dtype() const { return compute_; }
  bool allocated() const { return allocated_; }
  /// The trainable parameters' gradients (trainable_numel() elements).
  TensorView flat_grad() const { return grad_.view(); }
  /// The compute copy (the weights themselves at fp32).
  TensorView flat_value() const { return value_.view(); }
  /// True when the store keeps the fp32 master weights of every trainable element (always at fp32).
  bool master_complete() const { return master_complete_; }
  /// The flat ranges whose master weights the store keeps, in flat_master() order
  /// ({[0, trainable_numel)} when complete).
  const std::vector<parallel::FlatRange>& master_ranges() const { return master_ranges_; }
  /// The kept master weights back to back: the trainable elements' fp32 master when complete (at
  /// fp32 the first trainable_numel() elements of the compute copy), else the elements of
  /// master_ranges() in that order.
  TensorView flat_master() const;
  /// The master weights of `r`, which must lie inside one kept range.
  TensorView master_range(const parallel::FlatRange& r) const;
  /// Bytes of the flat buffers (value, grad, a separate master buffer and the frozen gradient scratch).
  std::size_t bytes() const { return value_.nbytes() + grad_.nbytes() + master_.nbytes() + frozen_grad_.nbytes(); }

 private:
  /// Offsets: trainable parameters back to back from 0, then the frozen ones.
  void lay_out();

  std::deque<Parameter> params_;
  std::int64_t numel_ = 0;
  std::int64_t trainable_numel_ = 0;
  bool allocated_ = false;
  DType compute_ = DType::kF32;
  bool master_complete_ = true;
  std::vector<parallel::FlatRange> master_ranges_;
  std::vector<std::int64_t> master_offsets_;  // start of each kept range in master_ (or value_ at fp32)
  Buffer master_, grad_, value_;  // master_ is empty at fp32 (the compute copy is the master)
  Buffer frozen_grad_;            // write-only gradient scratch of the frozen parameters
};

/// 64-bit FNV-1a hash (the Philox stream id of a parameter name).
std::uint64_t fnv1a64(const std::string& text);

}  // namespace bignlp::model
