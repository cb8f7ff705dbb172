// Flash attention (tensor-core kernels: bf16/fp16, head sizes 64 and 128) and the generic kernels
// (fp32, other head sizes) against the CPU reference: outputs, log-sum-exp and the gradients of
// q, k and v, causal and full, with and without dropout (masks match bit for bit), sequence lengths
// that are not multiples of the tiles, and tensor-parallel head offsets. Cases named *Large run
// the model's sequence length and are left out of compute-sanitizer runs (scripts/gpu_checks.sh).
#include <cstring>

#include "parity_util.h"

namespace bignlp::parity {
namespace {

struct AttnCase {
  DType dtype;
  int t, b, nh, hs;
  bool causal;
  float dropout;
  int head_offset = 0, total_heads = 0;
};

std::string describe(const AttnCase& c) {
  return std::string(dtype_name(c.dtype)) + " T=" + std::to_string(c.t) + " B=" + std::to_string(c.b) +
         " NH=" + std::to_string(c.nh) + " HS=" + std::to_string(c.hs) + (c.causal ? " causal" : " full") +
         " p=" + std::to_string(c.dropout) + " heads " + std::to_string(c.head_offset) + "/" +
         std::to_string(c.total_heads);
}

class AttentionParity : public CudaParity {
 protected:
  void run(const AttnCase& c) {
    SCOPED_TRACE(describe(c));
    std::mt19937 rng(static_cast<unsigned>(c.t * 131 + c.hs * 7 + c.nh + c.causal));
    ops::AttentionParams p;
    p.num_heads = c.nh;
    p.causal = c.causal;
    p.dropout = ops::DropoutParams{c.dropout, 42, 9, 0};
    p.head_offset = c.head_offset;
    p.total_heads = c.total_heads;
    const Shape qkv_shape{c.t, c.b, static_cast<std::int64_t>(c.nh) * 3 * c.hs};
    const Shape out_shape{c.t, c.b, static_cast<std::int64_t>(c.nh) * c.hs};
    Pair qkv = random(c.dtype, qkv_shape, rng);
    Pair out = output(c.dtype, out_shape), lse = output(DType::kF32, Shape{c.b, c.nh, c.t});
    ops::attention_forward(cpu_, qkv.h(), out.h(), lse.h(), p);
    ops::attention_forward(gpu_, qkv.d(), out.d(), lse.d(), p);
    const bool f32 = c.dtype == DType::kF32;
    EXPECT_TRUE(close(out, f32 ? 4096.0 : 8.0, "attention out"));
    EXPECT_TRUE(close(lse, f32 ? 4096.0 : 64.0, "attention lse", 1.0 / 16777216.0 * (f32 ? 1.0 : 64.0)));
    // The forward is deterministic: a second run gives the same bits.
    Pair out2 = output(c.dtype, out_shape);
    ops::attention_forward(gpu_, qkv.d(), out2.d(), lse.d(), p);
    const std::vector<float> o1 = values(out.d()), o2 = values(out2.d());
    EXPECT_EQ(std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)), 0) << "forward not reproducible";

    // Backward from the CPU's out and lse on both sides, so only the backward kernels differ.
    ops::copy(gpu_, out.h(), out.d());
    ops::copy(gpu_, lse.h(), lse.d());
    Pair dout = random(c.dtype, out_shape, rng);
    Pair dqkv = output(c.dtype, qkv_shape);
    ops::attention_backward(cpu_, qkv.h(), out.h(), lse.h(), dout.h(), dqkv.h(), p);
    ops::attention_backward(gpu_, qkv.d(), out.d(), lse.d(), dout.d(), dqkv.d(), p);
    const std::vector<float> g = values(dqkv.d()), r = values(dqkv.h());
    // Compare q, k and v gradients separately (each has its own scale).
    for (int part = 0; part < 3; ++part) {
      std::vector<float> gp, rp;
      for (std::size_t i = 0; i < g.size(); ++i) {
        const std::size_t col = i % static_cast<std::size_t>(qkv_shape[2]);
        if (static_cast<int>((col / c.hs) % 3) != part) continue;
        gp.push_back(g[i]);
        rp.push_back(r[i]);
      }
      EXPECT_TRUE(close(gp, rp, f32 ? 1.0 / 16777216.0 : eps_of(c.dtype), f32 ? 8192.0 : 16.0,
                        std::string("attention d") + "qkv"[part]));
    }
    // dK and dV are summed in a fixed order: reproducible bit for bit (dQ uses atomics).
    Pair dqkv2 = output(c.dtype, qkv_shape);
    ops::attention_backward(gpu_, qkv.d(), out.d(), lse.d(), dout.d(), dqkv2.d(), p);
    const std::vector<float> g2 = values(dqkv2.d());
    std::size_t kv_diff = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      const std::size_t col = i % static_cast<std::size_t>(qkv_shape[2]);
      if ((col / c.hs) % 3 != 0 && std::memcmp(&g[i], &g2[i], sizeof(float)) != 0) ++kv_diff;
    }
    EXPECT_EQ(kv_diff, 0u) << "dK/dV not reproducible";
  }
};

TEST_F(AttentionParity, FlashHead64CausalBf16) { run({DType::kBF16, 256, 2, 4, 64, true, 0.0f}); }
TEST_F(AttentionParity, FlashHead128CausalBf16TailAndDropout) { run({DType::kBF16, 200, 1, 2, 128, true, 0.1f}); }
TEST_F(AttentionParity, FlashHead64FullFp16) { run({DType::kF16, 384, 1, 3, 64, false, 0.0f}); }
TEST_F(AttentionParity, FlashHead128FullBf16TailDropout) { run({DType::kBF16, 130, 2, 2, 128, false, 0.1f}); }
TEST_F(AttentionParity, FlashHead64CausalFp16Dropout) { run({DType::kF16, 192, 2, 2, 64, true, 0.2f}); }
TEST_F(AttentionParity, FlashTensorParallelHeadOffset) { run({DType::kBF16, 128, 2, 2, 64, true, 0.1f, 2, 6}); }
TEST_F(AttentionParity, FlashTinySequence) { run({DType::kBF16, 7, 3, 1, 64, true, 0.0f}); }
TEST_F(AttentionParity, GenericFp32CausalDropout) { run({DType::kF32, 100, 2, 2, 64, true, 0.1f}); }
TEST_F(AttentionParity, GenericHead32Bf16) { run({DType::kBF16, 64, 2, 4, 32, true, 0.0f}); }
TEST_F(AttentionParity, GenericHead80FullFp16) { run({DType::kF16, 96, 1, 2, 80, false, 0.1f}); }
TEST_F(AttentionParity, GenericHead16Fp32Tiny) { run({DType::kF32, 128, 2, 4, 16, true, 0.1f}); }
TEST_F(AttentionParity, ModelShapeHead128Large) { run({DType::kBF16, 2048, 1, 2, 128, true, 0.0f}); }
TEST_F(AttentionParity, ModelShapeHead64DropoutLarge) { run({DType::kBF16, 2048, 1, 2, 64, true, 0.1f}); }

}  // namespace
}  // namespace bignlp::parity
