// CUDA dropout launchers (kernels/dropout.cu): the Philox mask of ops/philox.h, bit for bit.
#include "cuda_common.h"

namespace bignlp::ops::cuda {
namespace {

kernels::DropoutArgs args_of(const DropoutParams& p) { return {p.p, p.seed, p.offset, p.first_index}; }

}  // namespace

void dropout_forward(const OpContext& ctx, const TensorView& x, const TensorView& y, const DropoutParams& params,
                     const TensorView& residual) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_dropout_forward(x.raw(), residual.defined() ? residual.raw() : nullptr, y.raw(), x.dtype(),
                                  x.numel(), args_of(params), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "dropout_forward");
}

void dropout_backward(const OpContext& ctx, const TensorView& dy, const TensorView& dx, const DropoutParams& params,
                      bool accumulate) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_dropout_backward(dy.raw(), dx.raw(), dy.dtype(), dy.numel(), args_of(params), accumulate,
                                   cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "dropout_backward");
}

}  // namespace bignlp::ops::cuda
