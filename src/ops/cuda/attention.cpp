// CUDA attention launchers (kernels/attention.cu): flash kernels on tensor cores for bf16/fp16 and
// head sizes 64 and 128, generic kernels otherwise; the backward's workspace (D and the fp32 dQ
// accumulators) comes from the context's allocator.
#include <cmath>

#include "cuda_common.h"

namespace bignlp::ops::cuda {
namespace {

kernels::AttentionArgs args_of(const TensorView& qkv, const AttentionParams& p) {
  kernels::AttentionArgs a;
  a.t = static_cast<int>(qkv.size(0));
  a.b = static_cast<int>(qkv.size(1));
  a.nh = p.num_heads;
  a.hs = static_cast<int>(qkv.size(2) / (3 * p.num_heads));
  a.total_heads = p.total_heads > 0 ? p.total_heads : p.num_heads;
  a.head_offset = p.head_offset;
  a.scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(a.hs));
  a.causal = p.causal;
  a.dropout_p = p.dropout.p;
  a.seed = p.dropout.seed;
  a.offset = p.dropout.offset;
  BIGNLP_CHECK(qkv.size(0) <= 0x7FFFFFFF && qkv.size(1) <= 0x7FFFFFFF, "attention: T or B exceeds int32");
  return a;
}

}  // namespace

void attention_forward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                       const AttentionParams& params) {
  CudaContext& cc = cuda_state(ctx);
  kernels::launch_attention_forward(qkv.raw(), out.raw(), static_cast<float*>(lse.raw()), qkv.dtype(),
                                    args_of(qkv, params), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "attention_forward");
}

void attention_backward(const OpContext& ctx, const TensorView& qkv, const TensorView& out, const TensorView& lse,
                        const TensorView& dout, const TensorView& dqkv, const AttentionParams& params) {
  CudaContext& cc = cuda_state(ctx);
  const kernels::AttentionArgs args = args_of(qkv, params);
  Scratch ws(*ctx.allocator, kernels::attention_backward_workspace_bytes(args));
  kernels::launch_attention_backward(qkv.raw(), out.raw(), static_cast<const float*>(lse.raw()), dout.raw(),
                                     dqkv.raw(), qkv.dtype(), args, ws.get(), ws.bytes(), cc.stream);
  BIGNLP_CUDA_LAUNCH_CHECK(cc, "attention_backward");
}

}  // namespace bignlp::ops::cuda
