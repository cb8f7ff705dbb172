#include "bignlp/model/linear.h"

namespace bignlp::model {

Linear::Linear(ParameterStore& store, const LinearSpec& spec) {
  Parameter w;
  w.name = spec.name + ".weight";
  w.shape = Shape{spec.out, spec.in};
  w.init = ParamInit::kNormal;
  w.init_std = spec.init_std;
  w.weight_decay = true;
  w.partition_dim = spec.partition == LinearPartition::kColumn ? 0 : spec.partition == LinearPartition::kRow ? 1 : -1;
  weight_ = &store.add(std::move(w));
  if (spec.bias) {
    Parameter b;
    b.name = spec.name + ".bias";
    b.shape = Shape{spec.out};
    b.init = ParamInit::kZeros;
    b.weight_decay = false;
    b.partition_dim = spec.partition == LinearPartition::kColumn ? 0 : -1;  // row-parallel bias is replicated
    bias_ = &store.add(std::move(b));
  }
}

void Linear::forward(const ops::OpContext& ctx, const TensorView& x, const TensorView& y) const {
  ops::gemm(ctx, x, weight_->value, y, ops::GemmParams{false, true}, bias_ ? bias_->value : TensorView{});
}

void Linear::backward(const ops::OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx) const {
  ops::gemm(ctx, dy, x, weight_->grad, ops::GemmParams{true, false, 1.0f, 1.0f});
  if (bias_) ops::bias_backward(ctx, dy, bias_->grad);
  if (dx.defined()) ops::gemm(ctx, dy, weight_->value, dx, ops::GemmParams{});
}

LayerNorm::LayerNorm(ParameterStore& store, const std::string& name, std::int64_t channels, float eps) : eps_(eps) {
  Parameter w;
  w.name = name + ".weight";
  w.shape = Shape{channels};
  w.init = ParamInit::kOnes;
  w.weight_decay = false;
  weight_ = &store.add(std::move(w));
  Parameter b;
  b.name = name + ".bias";
  b.shape = Shape{channels};
  b.init = ParamInit::kZeros;
  b.weight_decay = false;
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
