// CUDA LayerNorm launchers (kernels/layernorm.cu).
#include "cuda_common.h"

namespace bignlp::ops::cuda {

void layernorm_forward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& bias,
                       const TensorView& y, const TensorView& mean, const TensorView& rstd, float eps) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_layernorm_forward(x.raw(), weight.raw(), bias.raw(), y.raw(),
                                    mean.defined() ? static_cast<float*>(mean.raw()) : nullptr,
                                    rstd.defined() ? static_cast<float*>(rstd.raw()) : nullptr, x.dtype(), x.size(0),
                                    x.size(1), eps, cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "layernorm_forward");
}

void layernorm_backward(const OpContext& ctx, const TensorView& x, const TensorView& weight, const TensorView& mean,
                        const TensorView& rstd, const TensorView& dy, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dbias, bool accumulate_dx) {
  CudaContext& cc = cuda_state(ctx);
  const std::int64_t n = x.size(0), c = x.size(1);
  if (n == 0 || c == 0) return;
  Scratch ws(*ctx.allocator, kernels::layernorm_backward_workspace_bytes(n, c));
  kernels::launch_layernorm_backward(x.raw(), weight.raw(), static_cast<const float*>(mean.raw()),
                                     static_cast<const float*>(rstd.raw()), dy.raw(), dx.raw(),
                                     static_cast<float*>(dweight.raw()), static_cast<float*>(dbias.raw()), x.dtype(), n,
                                     c, accumulate_dx, ws.get(), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "layernorm_backward");
}

}  // namespace bignlp::ops::cuda
