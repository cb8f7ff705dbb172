// Linear: y = x W^T + b with W (out, in) (torch/Megatron layout), on rows of an (N, in) matrix.
//
// Registers its weight and bias in a ParameterStore. The partition kind says how tensor
// parallelism splits it (column: the output dim, row: the input dim); with a TP communicator in the
// spec the layer holds only its shard and runs as parallel::ColumnParallelLinear /
// RowParallelLinear (with sequence parallelism when asked); without one it is the plain layer
// (the parallel layers at one rank are exactly that). Weight and bias gradients accumulate in fp32
// (GEMM with fp32 output and beta 1: gradient-accumulation fusion).
#pragma once

#include <string>

#include "bignlp/comm/communicator.h"
#include "bignlp/model/block_spec.h"
#include "bignlp/model/parameters.h"
#include "bignlp/ops/ops.h"
#include "bignlp/parallel/linear_weights.h"

namespace bignlp::model {

enum class LinearPartition { kNone, kColumn, kRow };

struct LinearSpec {
  std::string name;  ///< prefix: "<name>.weight", "<name>.bias"
  std::int64_t in = 0;
  std::int64_t out = 0;
  float init_std = 0.02f;
  bool bias = true;
  LinearPartition partition = LinearPartition::kNone;
  /// Tensor-parallel communicator (null: one rank). in/out above are the full sizes; the layer
  /// keeps out/t rows (column) or in/t columns (row).
  comm::Communicator* tp = nullptr;
  bool sequence_parallel = false;  ///< column: input rows gathered; row: output reduce-scattered
  bool async_allreduce = false;    ///< column: input-gradient all-reduce overlapped with the weight gradient
};

class Linear {
 public:
  Linear(ParameterStore& store, const LinearSpec& spec);

  /// y (N, out) = x (N, in) W^T + b (shard shapes under TP; x has N/t rows for a column layer
  /// and y N/t rows for a row layer under sequence parallelism).
  void forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y) const;
  /// dW += dy^T x, db += colsum(dy) (fp32); dx (N, in) = dy W when dx is given (written).
  void backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx) const;

  Parameter& weight() const { return *weight_; }
  Parameter* bias() const { return bias_; }
  /// Views of this layer's shard for the parallel layers.
  parallel::LinearWeights weights() const;

 private:
  /// The TP communicator of a column-partitioned layer (an unpartitioned one is a plain layer).
  comm::Communicator* column_tp() const { return partition_ == LinearPartition::kColumn ? tp_ : nullptr; }

  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  LinearPartition partition_ = LinearPartition::kNone;
  comm::Communicator* tp_ = nullptr;
  bool sequence_parallel_ = false;
  bool async_allreduce_ = false;
};

/// A normalization over the last dimension (NormSpec: LayerNorm or RMSNorm, with or without a
/// bias), weight (C) [and bias (C)], fp32 statistics.
struct NormSpec {
  std::string name;  ///< prefix: "<name>.weight", "<name>.bias"
  std::int64_t channels = 0;
  float eps = 1e-5f;
  Normalization kind = Normalization::kLayerNorm;
  bool bias = true;
  /// The layer sees a sequence slice; its gradients are partial sums over TP.
  bool sequence_parallel = false;
};

class Norm {
 public:
  Norm(ParameterStore& store, const NormSpec& spec);

  /// y (N, C) = norm(x); mean (LayerNorm only), rstd (N) fp32 for the backward (may be empty).
  void forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y, const TensorView& mean,
               const TensorView& rstd) const;
  /// dx (N, C) = (or += with accumulate) the input gradient; weight/bias grads +=.
  void backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& mean, const TensorView& rstd,
                const TensorView& dy, const TensorView& dx, bool accumulate) const;

  Normalization kind() const { return kind_; }
  Parameter& weight() const { return *weight_; }
  Parameter* bias() const { return bias_; }

 private:
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  float eps_ = 1e-5f;
  Normalization kind_ = Normalization::kLayerNorm;
};

}  // namespace bignlp::model
