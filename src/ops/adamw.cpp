#include "backend.h"

#ifndef BIGNLP_OPS_CUDA_ADAMW
#define BIGNLP_OPS_CUDA_ADAMW 0
#endif

namespace bignlp::ops {

using namespace detail;

void adamw_step(const OpContext& ctx, const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
                const TensorView& exp_avg_sq, const AdamWParams& params, const TensorView& model_param) {
  constexpr std::string_view op = "adamw_step";
  const std::pair<const char*, const TensorView*> fp32[] = {
      {"param", &param}, {"grad", &grad}, {"exp_avg", &exp_avg}, {"exp_avg_sq", &exp_avg_sq}};
  for (const auto& [name, t] : fp32) {
    check_on_device(ctx, op, name, *t);
    check_dtype(op, name, *t, {DType::kF32});
    check_contiguous(op, name, *t);
    BIGNLP_CHECK(t->numel() == param.numel(), "adamw_step: '{}' has {} elements, param has {}", name, t->numel(),
                 param.numel());
  }
  if (model_param.defined()) {
    check_on_device(ctx, op, "model_param", model_param);
    check_float(op, "model_param", model_param);
    check_contiguous(op, "model_param", model_param);
    BIGNLP_CHECK(model_param.numel() == param.numel(), "adamw_step: model_param has {} elements, param has {}",
                 model_param.numel(), param.numel());
  }
  BIGNLP_CHECK(params.step >= 1, "adamw_step: step is 1-based, got {}", params.step);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ADAMW, adamw_step, ctx, param, grad, exp_avg, exp_avg_sq, params, model_param);
}

void adamw_step_multi(const OpContext& ctx, std::span<const AdamWTensors> groups, const AdamWParams& params) {
  constexpr std::string_view op = "adamw_step_multi";
  for (const AdamWTensors& g : groups) {
    const std::pair<const char*, const TensorView*> fp32[] = {
        {"param", &g.param}, {"grad", &g.grad}, {"exp_avg", &g.exp_avg}, {"exp_avg_sq", &g.exp_avg_sq}};
    for (const auto& [name, t] : fp32) {
      check_on_device(ctx, op, name, *t);
      check_dtype(op, name, *t, {DType::kF32});
      check_contiguous(op, name, *t);
      BIGNLP_CHECK(t->numel() == g.param.numel(), "adamw_step_multi: '{}' has {} elements, param has {}", name,
                   t->numel(), g.param.numel());
    }
    if (g.model_param.defined()) {
      check_on_device(ctx, op, "model_param", g.model_param);
      check_float(op, "model_param", g.model_param);
      check_contiguous(op, "model_param", g.model_param);
      BIGNLP_CHECK(g.model_param.numel() == g.param.numel(),
                   "adamw_step_multi: model_param has {} elements, param has {}", g.model_param.numel(),
                   g.param.numel());
    }
  }
  BIGNLP_CHECK(params.step >= 1, "adamw_step_multi: step is 1-based, got {}", params.step);
  BIGNLP_OPS_DISPATCH(BIGNLP_OPS_CUDA_ADAMW, adamw_step_multi, ctx, groups, params);
}

}  // namespace bignlp::ops
