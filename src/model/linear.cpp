#include "bignlp/model/linear.h"

#include "bignlp/core/check.h"
#include "bignlp/parallel/column_parallel_linear.h"
#include "bignlp/parallel/row_parallel_linear.h"

namespace bignlp::model {

Linear::Linear(ParameterStore& store, const LinearSpec& spec)
    : partition_(spec.partition),
      tp_(spec.tp != nullptr && spec.tp->size() > 1 ? spec.tp : nullptr),
      sequence_parallel_(spec.sequence_parallel && tp_ != nullptr),
      async_allreduce_(spec.async_allreduce) {
  const int t = tp_ != nullptr && partition_ != LinearPartition::kNone ? tp_->size() : 1;
  const int r = t > 1 ? tp_->rank() : 0;
  std::int64_t out = spec.out, in = spec.in;
  if (partition_ == LinearPartition::kColumn) {
    BIGNLP_CHECK(out % t == 0, "{}: {} outputs do not split over {} tensor-parallel ranks", spec.name, out, t);
    out /= t;
  } else if (partition_ == LinearPartition::kRow) {
    BIGNLP_CHECK(in % t == 0, "{}: {} inputs do not split over {} tensor-parallel ranks", spec.name, in, t);
    in /= t;
  }
  Parameter w;
  w.name = spec.name + ".weight";
  w.shape = Shape{out, in};
  w.tp_rank = r;
  w.tp_size = t;
  w.init = ParamInit::kNormal;
  w.init_std = spec.init_std;
  w.weight_decay = true;
  w.partition_dim = spec.partition == LinearPartition::kColumn ? 0 : spec.partition == LinearPartition::kRow ? 1 : -1;
  weight_ = &store.add(std::move(w));
  if (spec.bias) {
    Parameter b;
    b.name = spec.name + ".bias";
    b.shape = Shape{out};
    b.init = ParamInit::kZeros;
    b.weight_decay = false;
    b.partition_dim = spec.partition == LinearPartition::kColumn ? 0 : -1;  // row-parallel bias is replicated
    b.tp_rank = r;
    b.tp_size = t;
    bias_ = &store.add(std::move(b));
  }
}

parallel::LinearWeights Linear::weights() const {
  // A frozen parameter's gradient is not computed (its grad view is only a scratch).
  return parallel::LinearWeights{weight_->value, bias_ ? bias_->value : TensorView{},
                                 weight_->trainable ? weight_->grad : TensorView{},
                                 bias_ && bias_->trainable ? bias_->grad : TensorView{}};
}

// The parallel layers at one rank (no TP communicator) are exactly the plain layer, so there is
// one path: a row-partitioned layer runs as RowParallelLinear, every other as ColumnParallelLinear.
void Linear::forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y) const {
  if (partition_ == LinearPartition::kRow) {
    parallel::RowParallelLinear(tp_, sequence_parallel_).forward(ctx, weights(), x, y);
  } else {
    parallel::ColumnParallelLinear(column_tp(), sequence_parallel_, async_allreduce_).forward(ctx, weights(), x, y);
  }
}

void Linear::backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx) const {
  if (partition_ == LinearPartition::kRow) {
    parallel::RowParallelLinear(tp_, sequence_parallel_).backward(ctx, weights(), x, dy, dx);
  } else {
    parallel::ColumnParallelLinear(column_tp(), sequence_parallel_, async_allreduce_).backward(ctx, weights(), x, dy, dx);
  }
}

Norm::Norm(ParameterStore& store, const NormSpec& spec) : eps_(spec.eps), kind_(spec.kind) {
  BIGNLP_CHECK(!(spec.kind == Normalization::kRmsNorm && spec.bias), "{}: RMSNorm has no bias", spec.name);
  Parameter w;
  w.name = spec.name + ".weight";
  w.shape = Shape{spec.channels};
  w.init = ParamInit::kOnes;
  w.weight_decay = false;
  w.sequence_parallel = spec.sequence_parallel;
  weight_ = &store.add(std::move(w));
  if (spec.bias) {
    Parameter b;
    b.name = spec.name + ".bias";
    b.shape = Shape{spec.channels};
    b.init = ParamInit::kZeros;
    b.weight_decay = false;
    b.sequence_parallel = spec.sequence_parallel;
    bias_ = &store.add(std::move(b));
  }
}

void Norm::forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y, const TensorView& mean,
                   const TensorView& rstd) const {
  if (kind_ == Normalization::kRmsNorm) {
    ops::rmsnorm_forward(ctx, x, weight_->value, y, rstd, eps_);
  } else {
    ops::layernorm_forward(ctx, x, weight_->value, bias_ != nullptr ? bias_->value : TensorView{}, y, mean, rstd, eps_);
  }
}

void Norm::backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& mean, const TensorView& rstd,
                    const TensorView& dy, const TensorView& dx, bool accumulate) const {
  if (kind_ == Normalization::kRmsNorm) {
    ops::rmsnorm_backward(ctx, x, weight_->value, rstd, dy, dx, weight_->grad, accumulate);
  } else {
    ops::layernorm_backward(ctx, x, weight_->value, mean, rstd, dy, dx, weight_->grad,
                            bias_ != nullptr ? bias_->grad : TensorView{}, accumulate);
  }
}

}  // namespace bignlp::model
