// CUDA embedding launchers (kernels/embedding.cu); the backward's sort workspace comes from the
// context's allocator.
#include "cuda_common.h"

namespace bignlp::ops::cuda {

void embedding_forward(const OpContext& ctx, const TensorView& ids, const TensorView& table, const TensorView& out,
                       std::int64_t vocab_start, bool accumulate) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_embedding_forward(static_cast<const std::int32_t*>(ids.raw()), table.raw(), out.raw(),
                                    table.dtype(), ids.size(0), table.size(1), table.size(0), vocab_start, accumulate,
                                    cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "embedding_forward");
}

void embedding_backward(const OpContext& ctx, const TensorView& ids, const TensorView& dout, const TensorView& dtable,
                        std::int64_t vocab_start) {
  CudaContext& cc = cuda_state(ctx);
  const std::int64_t n = ids.size(0), c = dtable.size(1), v = dtable.size(0);
  if (n == 0 || c == 0) return;
  BIGNLP_CHECK(n <= 0x7FFFFFFF && v < 0x7FFFFFFF, "embedding_backward: {} tokens / {} rows exceed int32", n, v);
  Scratch ws(*ctx.allocator, kernels::embedding_backward_workspace_bytes(n, v));
  kernels::launch_embedding_backward(static_cast<const std::int32_t*>(ids.raw()), dout.raw(),
                                     static_cast<float*>(dtable.raw()), dout.dtype(), n, c, v, vocab_start, ws.get(),
                                     ws.bytes(), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "embedding_backward");
}

}  // namespace bignlp::ops::cuda
