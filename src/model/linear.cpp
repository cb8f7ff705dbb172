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
  return parallel::LinearWeights{weight_->value, bias_ ? bias_->value : TensorView{}, weight_->grad,
                                 bias_ ? bias_->grad : TensorView{}};
}

void Linear::forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y) const {
  if (tp_ != nullptr && partition_ == LinearPartition::kColumn) {
    parallel::ColumnParallelLinear(tp_, sequence_parallel_, async_allreduce_).forward(ctx, weights(), x, y);
  } else if (tp_ != nullptr && partition_ == LinearPartition::kRow) {
    parallel::RowParallelLinear(tp_, sequence_parallel_).forward(ctx, weights(), x, y);
  } else {
    ops::gemm(ctx, x, weight_->value, y, ops::GemmParams{false, true}, bias_ ? bias_->value : TensorView{});
  }
}

void Linear::backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx) const {
  if (tp_ != nullptr && partition_ == LinearPartition::kColumn) {
    parallel::ColumnParallelLinear(tp_, sequence_parallel_, async_allreduce_).backward(ctx, weights(), x, dy, dx);
    return;
  }
  if (tp_ != nullptr && partition_ == LinearPartition::kRow) {
    parallel::RowParallelLinear(tp_, sequence_parallel_).backward(ctx, weights(), x, dy, dx);
    return;
  }
  ops::gemm(ctx, dy, x, weight_->grad, ops::GemmParams{true, false, 1.0f, 1.0f});
  if (bias_) ops::bias_backward(ctx, dy, bias_->grad);
  if (dx.defined()) ops::gemm(ctx, dy, weight_->value, dx, ops::GemmParams{});
}

LayerNorm::LayerNorm(ParameterStore& store, const std::string& name, std::int64_t channels, float eps,
                     bool sequence_parallel)
    : eps_(eps) {
  Parameter w;
  w.name = name + ".weight";
  w.shape = Shape{channels};
  w.init = ParamInit::kOnes;
  w.weight_decay = false;
  w.sequence_parallel = sequence_parallel;
  weight_ = &store.add(std::move(w));
  Parameter b;
  b.name = name + ".bias";
  b.shape = Shape{channels};
  b.init = ParamInit::kZeros;
  b.weight_decay = false;
  b.sequence_parallel = sequence_parallel;
  bias_ = &store.add(std::move(b));
}

void LayerNorm::forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y, const TensorView& mean,
                        const TensorView& rstd) const {
  ops::layernorm_forward(ctx, x, weight_->value, bias_->value, y, mean, rstd, eps_);
}

void LayerNorm::backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& mean,
                         const TensorView& rstd, const TensorView& dy, const TensorView& dx, bool accumulate) const {
  ops::layernorm_backward(ctx, x, weight_->value, mean, rstd, dy, dx, weight_->grad, bias_->grad, accumulate);
}

}  // namespace bignlp::model
