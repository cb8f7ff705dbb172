// CUDA Adam(W) launchers: multi-tensor launches (kernels/adamw.cu) for one or many tensors.
#include <cmath>
#include <vector>

#include "cuda_common.h"

namespace bignlp::ops::cuda {
namespace {

kernels::AdamWArgs args_of(const AdamWParams& a) {
  kernels::AdamWArgs k;
  k.lr = a.lr;
  k.beta1 = a.beta1;
  k.beta2 = a.beta2;
  k.eps = a.eps;
  // The same float values the CPU reference computes.
  k.bias_correction1 =
      1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step)));
  k.bias_correction2 =
      1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step)));
  k.decoupled = a.decoupled_weight_decay;
  k.grad_scale = a.grad_scale;
  return k;
}

kernels::AdamWTensor tensor_of(const AdamWTensors& g) {
  kernels::AdamWTensor t;
  t.param = static_cast<float*>(g.param.raw());
  t.grad = static_cast<const float*>(g.grad.raw());
  t.exp_avg = static_cast<float*>(g.exp_avg.raw());
  t.exp_avg_sq = static_cast<float*>(g.exp_avg_sq.raw());
  t.model_param = g.model_param.defined() ? g.model_param.raw() : nullptr;
  t.model_dtype = g.model_param.defined() ? g.model_param.dtype() : DType::kF32;
  t.numel = g.param.numel();
  t.weight_decay = g.weight_decay;
  return t;
}

void run(const OpContext& ctx, const std::vector<kernels::AdamWTensor>& tensors, const AdamWParams& params) {
  CudaContext& cc = cuda_state(ctx);
  if (tensors.empty()) return;
  kernels::launch_adamw(tensors.data(), static_cast<int>(tensors.size()), args_of(params), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "adamw");
}

}  // namespace

void adamw_step(const OpContext& ctx, const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
                const TensorView& exp_avg_sq, const AdamWParams& params, const TensorView& model_param) {
  const AdamWTensors group{param, grad, exp_avg, exp_avg_sq, model_param, params.weight_decay};
  run(ctx, {tensor_of(group)}, params);
}

void adamw_step_multi(const OpContext& ctx, std::span<const AdamWTensors> groups, const AdamWParams& params) {
  std::vector<kernels::AdamWTensor> tensors;
  tensors.reserve(groups.size());
  for (const AdamWTensors& g : groups) tensors.push_back(tensor_of(g));
  run(ctx, tensors, params);
}

}  // namespace bignlp::ops::cuda
