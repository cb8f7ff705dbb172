// OptimizerState: what checkpoints save and restore of an optimizer, without knowing the optimizer.
//
// An Adam-style state: two fp32 moments per trainable element (exp_avg, exp_avg_sq) and a step
// count. A checkpoint stores the moments per parameter, like the weights ("exp_avg.<name>",
// "exp_avg_sq.<name>" in optimizer.safetensors). The optimizer (train::AdamOptimizer) implements
// this interface, so this library never sees the optimizer itself.
//   replicated   every rank holds the moments of all its parameters; exp_avg()/exp_avg_sq() are
//                flat views laid out like the parameter store's flat gradient buffer (the
//                trainable parameters back to back), read directly when saving
//   sharded      (the distributed optimizer) each data-parallel rank holds the moments (and, under
//                mixed precision, the fp32 master weights) of its shards only; gather_state()
//                assembles the full flat state on the saving rank, a collective over the DP group
// Loading is per parameter either way: assign_moments() keeps the elements this rank holds.
#pragma once

#include <cstdint>
#include <vector>

#include "bignlp/model/parameters.h"
#include "bignlp/tensor/tensor.h"

namespace bignlp::checkpoint {

class OptimizerState {
 public:
  virtual ~OptimizerState() = default;

  /// Successful steps so far (Adam's bias-correction step count).
  virtual std::int64_t steps() const = 0;
  virtual void set_steps(std::int64_t steps) = 0;

  /// True when each data-parallel rank holds only its shards (then save with gather_state()).
  virtual bool sharded() const = 0;
  /// The moments (fp32), laid out like the store's flat gradient buffer; meaningful when not sharded.
  virtual TensorView exp_avg() const = 0;
  virtual TensorView exp_avg_sq() const = 0;

  /// The full state laid out like the store's flat gradient buffer, in host memory: fp32 master
  /// weights (left empty when the store keeps all of them: read its flat_master()) and both
  /// moments. Sharded: a collective over the DP group; only ranks with `receive` get the vectors
  /// filled. Replicated: copies of the moments.
  virtual void gather_state(bool receive, std::vector<float>& master, std::vector<float>& exp_avg,
                            std::vector<float>& exp_avg_sq) = 0;
  /// Sets the moments of trainable parameter `p` from its full fp32 moments (p's numel, host or
  /// device memory): the elements this rank keeps.
  virtual void assign_moments(const model::Parameter& p, const TensorView& exp_avg, const TensorView& exp_avg_sq) = 0;
};

}  // namespace bignlp::checkpoint
