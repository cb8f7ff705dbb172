// LinearWeights: the tensors of one linear layer's shard, as views the parallel layers operate on.
//
// Layers own no memory: the model's parameter store holds the weights and their fp32 gradients, and
// passes views. Shapes follow Megatron's (out, in) layout; for a column-parallel layer out is the
// local out/t, for a row-parallel one in is the local in/t. Gradients are fp32 and accumulate (+=),
// as every op in the op table does.
#pragma once

#include "bignlp/tensor/tensor.h"

namespace bignlp::parallel {

struct LinearWeights {
  TensorView weight;       ///< (out, in) compute dtype
  TensorView bias;         ///< (out) compute dtype, or empty
  TensorView weight_grad;  ///< (out, in) fp32, accumulated; empty: frozen weights, not computed
  TensorView bias_grad;    ///< (out) fp32, accumulated; empty when bias is, or when frozen
};

}  // namespace bignlp::parallel
