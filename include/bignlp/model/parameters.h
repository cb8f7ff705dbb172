// ParameterStore: every trainable tensor of a model, in one flat list over contiguous buffers.
//
// Layers register their parameters (name, shape, init, decay, TP partition) at construction; then
// allocate() lays them out back to back in three flat buffers:
//   master (fp32)   the weights the optimizer updates (fp32 master weights),
//   value  (A)      the copy forward/backward read: bf16/fp16 under mixed precision, or the master
//                   buffer itself at fp32,
//   grad   (fp32)   gradients; ops accumulate into it over micro-batches (zero_grad per step).
// The optimizer, gradient clipping, data-parallel reduction and checkpoints work on these flat
// buffers (or per-parameter views into them); the layout order is registration order.
// Names are the NeMo state-dict keys (model.language_model.encoder.layers.0.mlp.dense_h_to_4h.weight).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "bignlp/ops/context.h"
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
  TensorView master;         ///< (shape) fp32
  TensorView grad;           ///< (shape) fp32

  std::int64_t numel() const { return shape.numel(); }
  /// Split over tensor-parallel ranks (each rank holds a different shard).
  bool tensor_parallel() const { return partition_dim >= 0 && tp_size > 1; }
};

class ParameterStore {
 public:
  ParameterStore() = default;
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  /// Registers a parameter; the returned reference stays valid for the store's lifetime. Throws
  /// RuntimeError for a duplicate name or after allocate().
  Parameter& add(Parameter spec);

  /// Allocates the flat buffers on allocator.device(): master and grad fp32, value in `compute`
  /// (shared with master when compute is fp32). Contents are uninitialised until initialize() or
  /// a checkpoint load.
  void allocate(Allocator& allocator, DType compute);

  /// Draws every parameter from its init rule: kNormal element i of the FULL (unsharded) tensor is
  /// philox_normal(seed, fnv1a64(name), i) * init_std, so a tensor-parallel shard holds exactly its
  /// part of the single-rank weights. Writes master (and value). Host-side generation, then copied.
  void initialize(const ops::OpContext& ctx, std::uint64_t seed);

  /// Sets every gradient to 0.
  void zero_grad(const ops::OpContext& ctx);
  /// value <- master (rounded to the compute dtype); no-op at fp32.
  void sync_values_from_master(const ops::OpContext& ctx);

  std::deque<Parameter>& params() { return params_; }
  const std::deque<Parameter>& params() const { return params_; }
  /// The parameter called `name`, or nullptr.
  Parameter* find(const std::string& name);
  std::int64_t numel() const { return numel_; }
  DType compute_dtype() const { return compute_; }
  bool allocated() const { return allocated_; }
  TensorView flat_master() const { return master_.view(); }
  TensorView flat_grad() const { return grad_.view(); }
  /// The compute copy (== flat_master() at fp32).
  TensorView flat_value() const;

 private:
  std::deque<Parameter> params_;
  std::int64_t numel_ = 0;
  bool allocated_ = false;
  DType compute_ = DType::kF32;
  Buffer master_, grad_, value_;
};

/// 64-bit FNV-1a hash (the Philox stream id of a parameter name).
std::uint64_t fnv1a64(const std::string& text);

}  // namespace bignlp::model
