// CUDA cross entropy and argmax launchers (kernels/cross_entropy.cu).
#include "cuda_common.h"

namespace bignlp::ops::cuda {

void cross_entropy_forward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                           const TensorView& losses, const TensorView& lse, std::int64_t vocab_start) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_cross_entropy_forward(logits.raw(), logits.dtype(), logits.size(0), logits.size(1),
                                        leading_dim(logits), static_cast<const std::int32_t*>(targets.raw()),
                                        vocab_start, static_cast<float*>(losses.raw()), static_cast<float*>(lse.raw()),
                                        cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "cross_entropy_forward");
}

void cross_entropy_backward(const OpContext& ctx, const TensorView& logits, const TensorView& targets,
                            const TensorView& lse, const TensorView& dlosses, const TensorView& dlogits,
                            std::int64_t vocab_start) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_cross_entropy_backward(logits.raw(), logits.dtype(), logits.size(0), logits.size(1),
                                         leading_dim(logits), static_cast<const std::int32_t*>(targets.raw()),
                                         vocab_start, static_cast<const float*>(lse.raw()),
                                         static_cast<const float*>(dlosses.raw()), dlogits.raw(), dlogits.dtype(),
                                         leading_dim(dlogits), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "cross_entropy_backward");
}

void argmax(const OpContext& ctx, const TensorView& x, const TensorView& out) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_argmax(x.raw(), x.dtype(), x.size(0), x.size(1), leading_dim(x),
                         static_cast<std::int32_t*>(out.raw()), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "argmax");
}

}  // namespace bignlp::ops::cuda
