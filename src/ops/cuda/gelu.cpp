// CUDA GeLU launchers (kernels/gelu.cu).
#include "cuda_common.h"

namespace bignlp::ops::cuda {

void gelu_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, GeluApprox approx) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_gelu_forward(x.raw(), y.raw(), x.dtype(), x.numel(), static_cast<int>(approx), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "gelu_forward");
}

void gelu_backward(const OpContext& ctx, const TensorView& x, const TensorView& dy, const TensorView& dx,
                   GeluApprox approx) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_gelu_backward(x.raw(), dy.raw(), dx.raw(), x.dtype(), x.numel(), static_cast<int>(approx),
                                cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "gelu_backward");
}

}  // namespace bignlp::ops::cuda
