// Linear: y = x W^T + b with W (out, in) (torch/Megatron layout), on rows of an (N, in) matrix.
//
// Registers its weight and bias in a ParameterStore. The partition kind records how tensor
// parallelism splits it (column: the output dim, row: the input dim) so the parallel layers and
// checkpoint resharding know; on one rank it changes nothing. Weight and bias gradients accumulate
// in fp32 (GEMM with fp32 output and beta 1: gradient-accumulation fusion).
#pragma once

#include <string>

#include "bignlp/model/parameters.h"
#include "bignlp/ops/ops.h"

namespace bignlp::model {

enum class LinearPartition { kNone, kColumn, kRow };

struct LinearSpec {
  std::string name;  ///< prefix: "<name>.weight", "<name>.bias"
  std::int64_t in = 0;
  std::int64_t out = 0;
  float init_std = 0.02f;
  bool bias = true;
  LinearPartition partition = LinearPartition::kNone;
};

class Linear {
 public:
  Linear(ParameterStore& store, const LinearSpec& spec);

  /// y (N, out) = x (N, in) W^T + b.
  void forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y) const;
  /// dW += dy^T x, db += colsum(dy) (fp32); dx (N, in) = dy W when dx is given (written).
  void backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx) const;

  Parameter& weight() const { return *weight_; }
  Parameter* bias() const { return bias_; }

 private:
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
};

/// LayerNorm over the last dimension with weight (C) and bias (C), fp32 statistics.
class LayerNorm {
 public:
  LayerNorm(ParameterStore& store, const std::string& name, std::int64_t channels, float eps);

  /// y (N, C) = LN(x); mean, rstd (N) fp32 for the backward (may be empty).
  void forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y, const TensorView& mean,
               const TensorView& rstd) const;
  /// dx (N, C) = (or += with accumulate) the input gradient; weight/bias grads +=.
  void backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& mean, const TensorView& rstd,
                const TensorView& dy, const TensorView& dx, bool accumulate) const;

  Parameter& weight() const { return *weight_; }
  Parameter& bias() const { return *bias_; }

 private:
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  float eps_ = 1e-5f;
};

}  // namespace bignlp::model
