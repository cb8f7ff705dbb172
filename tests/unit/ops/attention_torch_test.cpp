// attention_general_forward/backward against a PyTorch implementation written independently in
// tests/python/attention_reference.py (explicit masks, torch.softmax, float64 autograd): out, lse
// and dq, dk, dv, dbias for cross attention, key padding, an additive (T5) bias, decoding against a
// KV cache (one query and a block of three), dropout (keep masks exported from the Philox stream),
// fully masked rows, and bf16 inputs. All cases go to Python in one call (torch loads once).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "bignlp/core/file_io.h"
#include "bignlp/ops/philox.h"
#include "bignlp/tensor/half.h"
#include "bignlp/tensor/safetensors.h"
#include "op_test_util.h"

namespace bignlp::ops {
namespace {

using testing::HostTensor;
using testing::random_tensor;

struct TorchCase {
  const char* name = "";
  std::int64_t tq = 0, tk = 0, b = 0;
  int nh = 0;
  std::int64_t hs = 0;
  bool bias = false;
  std::vector<std::int32_t> key_lengths;
  bool causal = false;
  std::int64_t kv_offset = 0;
  float scale = 0.0f;
  float p = 0.0f;
  int head_offset = 0, total_heads = 0;
  bool bf16 = false;
  bool fused_kv = false;  ///< k, v as the column halves of one (Tk, B, 2C) projection
};

/// A case with its shapes set and every option off.
TorchCase shape_case(const char* name, std::int64_t tq, std::int64_t tk, std::int64_t b, int nh, std::int64_t hs) {
  TorchCase c;
  c.name = name;
  c.tq = tq;
  c.tk = tk;
  c.b = b;
  c.nh = nh;
  c.hs = hs;
  return c;
}

std::vector<TorchCase> torch_cases() {
  std::vector<TorchCase> cs;
  TorchCase c = shape_case("cross", 3, 5, 2, 2, 4);
  c.fused_kv = true;
  cs.push_back(c);
  c = shape_case("key_padding", 4, 4, 2, 2, 4);
  c.key_lengths = {4, 2};
  cs.push_back(c);
  c = shape_case("t5_bias", 4, 6, 2, 3, 4);
  c.bias = true;
  c.scale = 1.0f;
  c.key_lengths = {6, 3};
  cs.push_back(c);
  c = shape_case("decode_one", 1, 5, 2, 2, 4);
  c.causal = true;
  c.kv_offset = 4;
  c.bias = true;
  cs.push_back(c);
  c = shape_case("decode_block", 3, 7, 2, 2, 4);
  c.causal = true;
  c.kv_offset = 4;
  c.key_lengths = {7, 6};
  cs.push_back(c);
  c = shape_case("dropout", 4, 5, 2, 2, 4);
  c.causal = true;
  c.kv_offset = 1;
  c.bias = true;
  c.p = 0.3f;
  c.head_offset = 1;
  c.total_heads = 4;
  cs.push_back(c);
  c = shape_case("fully_masked", 3, 4, 2, 2, 4);
  c.bias = true;  // plus one row of -inf bias: see build_inputs
  c.key_lengths = {3, 0};
  cs.push_back(c);
  c = shape_case("bf16_cross", 3, 6, 2, 2, 8);
  c.bf16 = true;
  c.bias = true;
  c.key_lengths = {6, 4};
  c.fused_kv = true;
  cs.push_back(c);
  return cs;
}

/// Inputs and our results of one case, fp32 (bf16 cases hold the bf16 values widened).
struct CaseData {
  HostTensor q, k, v, dout, bias, keep;
  HostTensor out, lse, dq, dk, dv, dbias;
};

std::vector<float> rounded_to_bf16(std::vector<float> x) {
  for (auto& v : x) v = float_from_bf16(bf16_from_float(v));
  return x;
}

std::vector<BFloat16> to_bf16(const std::vector<float>& x) {
  std::vector<BFloat16> r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) r[i] = bf16_from_float(x[i]);
  return r;
}

GeneralAttentionParams params_of(const TorchCase& tc) {
  GeneralAttentionParams p;
  p.num_heads = tc.nh;
  p.scale = tc.scale;
  p.causal = tc.causal;
  p.kv_offset = tc.kv_offset;
  p.dropout = DropoutParams{tc.p, 4321, 17, 0};
  p.head_offset = tc.head_offset;
  p.total_heads = tc.total_heads;
  return p;
}

/// Runs the op on one case: forward, then backward with dbias starting at 0.
CaseData run_case(const TorchCase& tc, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const std::int64_t c = tc.nh * tc.hs;
  CaseData d;
  d.q = random_tensor(Shape{tc.tq, tc.b, c}, rng);
  d.k = random_tensor(Shape{tc.tk, tc.b, c}, rng);
  d.v = random_tensor(Shape{tc.tk, tc.b, c}, rng);
  d.dout = random_tensor(Shape{tc.tq, tc.b, c}, rng);
  if (tc.bf16)
    for (HostTensor* t : {&d.q, &d.k, &d.v, &d.dout}) t->data = rounded_to_bf16(t->data);
  if (tc.bias) {
    d.bias = random_tensor(Shape{tc.nh, tc.tq, tc.tk}, rng);
    if (std::string(tc.name) == "fully_masked")  // head 1, query 0: every key masked by the bias
      for (std::int64_t j = 0; j < tc.tk; ++j) d.bias[(1 * tc.tq + 0) * tc.tk + j] = -INFINITY;
  }
  const GeneralAttentionParams p = params_of(tc);
  if (tc.p > 0.0f) {
    const std::int64_t total = tc.total_heads ? tc.total_heads : tc.nh;
    d.keep = HostTensor(Shape{tc.b, tc.nh, tc.tq, tc.tk});
    for (std::int64_t b = 0; b < tc.b; ++b)
      for (std::int64_t h = 0; h < tc.nh; ++h)
        for (std::int64_t i = 0; i < tc.tq; ++i)
          for (std::int64_t j = 0; j < tc.tk; ++j) {
            const auto idx = static_cast<std::uint64_t>(((b * total + tc.head_offset + h) * tc.tq + i) * tc.tk + j);
            const bool keep = dropout_keep(p.dropout.seed, p.dropout.offset, idx, tc.p);
            d.keep[((b * tc.nh + h) * tc.tq + i) * tc.tk + j] = keep ? 1.0f : 0.0f;
          }
  }
  d.out = HostTensor(d.q.shape);
  d.lse = HostTensor(Shape{tc.b, tc.nh, tc.tq});
  d.dq = HostTensor(d.q.shape);
  d.dk = HostTensor(d.k.shape);
  d.dv = HostTensor(d.v.shape);
  if (tc.bias) d.dbias = HostTensor(d.bias.shape);
  const OpContext ctx = OpContext::cpu();
  const DType dt = tc.bf16 ? DType::kBF16 : DType::kF32;

  // Storage in the op's dtype; with fused_kv, k and v interleave per row as one (Tk, B, 2C) buffer.
  auto store = [&](const std::vector<float>& x) {
    std::vector<std::uint16_t> bits;
    if (tc.bf16)
      for (BFloat16 v : to_bf16(x)) bits.push_back(v.bits);
    return bits;
  };
  std::vector<float> kv32(static_cast<std::size_t>(2 * d.k.data.size()));
  for (std::int64_t r = 0; r < tc.tk * tc.b; ++r)
    for (std::int64_t e = 0; e < c; ++e) {
      kv32[r * 2 * c + e] = d.k.data[r * c + e];
      kv32[r * 2 * c + c + e] = d.v.data[r * c + e];
    }
  std::vector<float> q32 = d.q.data, k32 = d.k.data, v32 = d.v.data, dout32 = d.dout.data;
  std::vector<std::uint16_t> q16 = store(q32), k16 = store(k32), v16 = store(v32), kv16 = store(kv32),
                             dout16 = store(dout32);
  auto raw = [&](std::vector<float>& f32, std::vector<std::uint16_t>& b16) -> void* {
    return tc.bf16 ? static_cast<void*>(b16.data()) : static_cast<void*>(f32.data());
  };
  const std::size_t esize = tc.bf16 ? 2 : 4;
  const Shape qs{tc.tq, tc.b, c}, ks{tc.tk, tc.b, c};
  TensorView q(raw(q32, q16), dt, qs), dout(raw(dout32, dout16), dt, qs), k, v;
  if (tc.fused_kv) {
    const Shape st{tc.b * 2 * c, 2 * c, 1};
    char* base = static_cast<char*>(raw(kv32, kv16));
    k = TensorView(base, dt, ks, st, Device::cpu());
    v = TensorView(base + c * esize, dt, ks, st, Device::cpu());
  } else {
    k = TensorView(raw(k32, k16), dt, ks);
    v = TensorView(raw(v32, v16), dt, ks);
  }
  std::vector<std::uint16_t> out16(d.out.data.size()), dq16(d.dq.data.size()), dk16(d.dk.data.size()),
      dv16(d.dv.data.size());
  TensorView out(raw(d.out.data, out16), dt, qs), dq(raw(d.dq.data, dq16), dt, qs), dk(raw(d.dk.data, dk16), dt, ks),
      dv(raw(d.dv.data, dv16), dt, ks);
  const TensorView bias = tc.bias ? d.bias.view() : TensorView();
  const TensorView dbias = tc.bias ? d.dbias.view() : TensorView();
  attention_general_forward(ctx, q, k, v, bias, tc.key_lengths, out, d.lse.view(), p);
  attention_general_backward(ctx, q, k, v, bias, tc.key_lengths, out, d.lse.view(), dout, dq, dk, dv, dbias, p);
  if (tc.bf16) {
    auto widen = [](const std::vector<std::uint16_t>& bits, std::vector<float>& dst) {
      for (std::size_t i = 0; i < bits.size(); ++i) dst[i] = float_from_bf16(BFloat16{bits[i]});
    };
    widen(out16, d.out.data);
    widen(dq16, d.dq.data);
    widen(dk16, d.dk.data);
    widen(dv16, d.dv.data);
  }
  return d;
}

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

/// max |ours - theirs| <= rtol * max |theirs| + atol; infinities must match exactly.
::testing::AssertionResult close(const std::string& what, const std::vector<float>& ours,
                                 const std::vector<float>& theirs, double rtol, double atol = 1e-6) {
  if (ours.size() != theirs.size())
    return ::testing::AssertionFailure() << what << ": " << ours.size() << " vs " << theirs.size() << " elements";
  double max_ref = 0.0, max_err = 0.0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    if (std::isinf(theirs[i]) || std::isinf(ours[i])) {
      if (ours[i] != theirs[i])
        return ::testing::AssertionFailure() << what << "[" << i << "]: ours " << ours[i] << ", torch " << theirs[i];
      continue;
    }
    if (!std::isfinite(ours[i])) return ::testing::AssertionFailure() << what << "[" << i << "] is " << ours[i];
    max_ref = std::max(max_ref, std::abs(static_cast<double>(theirs[i])));
    const double err = std::abs(static_cast<double>(ours[i]) - theirs[i]);
    if (err > max_err) {
      max_err = err;
      worst = i;
    }
  }
  if (max_err > rtol * max_ref + atol)
    return ::testing::AssertionFailure() << what << ": max |ours - torch| = " << max_err << " at " << worst
                                         << " (ours " << ours[worst] << ", torch " << theirs[worst]
                                         << "), max |torch| = " << max_ref;
  return ::testing::AssertionSuccess();
}

// One test for all cases: ctest runs every test in its own process, and loading torch dominates.
TEST(AttentionTorchTest, EveryCaseMatchesPyTorchForwardAndBackward) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  TempDir dir("attention-torch");
  SafetensorsWriter w;
  nlohmann::json meta = nlohmann::json::array();
  const std::vector<TorchCase> cases = torch_cases();
  std::vector<CaseData> ours;
  ours.reserve(cases.size());
  std::uint32_t seed = 100;
  for (const TorchCase& tc : cases) {
    CaseData& d = ours.emplace_back(run_case(tc, seed++));
    const std::string n = tc.name;
    w.add(n + ".q", d.q.view());
    w.add(n + ".k", d.k.view());
    w.add(n + ".v", d.v.view());
    w.add(n + ".dout", d.dout.view());
    if (tc.bias) w.add(n + ".bias", d.bias.view());
    if (tc.p > 0.0f) w.add(n + ".keep", d.keep.view());
    if (!tc.key_lengths.empty())
      w.add(n + ".key_lengths", TensorView(const_cast<std::int32_t*>(tc.key_lengths.data()), DType::kI32,
                                           Shape{static_cast<std::int64_t>(tc.key_lengths.size())}));
    meta.push_back({{"name", n}, {"num_heads", tc.nh}, {"scale", tc.scale}, {"causal", tc.causal},
                    {"kv_offset", tc.kv_offset}, {"p", tc.p}});
  }
  w.set_metadata("cases", meta.dump());
  w.write(dir.path() / "in.safetensors");
  const std::string cmd = fmt::format("/usr/bin/python3 {}/tests/python/attention_reference.py {} {}",
                                      BIGNLP_SOURCE_DIR, (dir.path() / "in.safetensors").string(),
                                      (dir.path() / "out.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  SafetensorsReader ref(dir.path() / "out.safetensors");
  auto theirs = [&](const std::string& name) {
    const TensorView view = ref.view(name);
    const float* p = view.data<float>();
    return std::vector<float>(p, p + view.numel());
  };
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const TorchCase& tc = cases[c];
    const CaseData& d = ours[c];
    const std::string n = tc.name;
    SCOPED_TRACE("case " + n);
    // fp32 against float64: rounding only. bf16: out and the input gradients are stored in bf16
    // (relative step 2^-8) and the backward reads the rounded out.
    const double tol_out = tc.bf16 ? 1e-2 : 1e-5, tol_grad = tc.bf16 ? 2e-2 : 1e-4;
    EXPECT_TRUE(close("out", d.out.data, theirs(n + ".out"), tol_out));
    EXPECT_TRUE(close("lse", d.lse.data, theirs(n + ".lse"), 1e-5));
    EXPECT_TRUE(close("dq", d.dq.data, theirs(n + ".dq"), tol_grad));
    EXPECT_TRUE(close("dk", d.dk.data, theirs(n + ".dk"), tol_grad));
    EXPECT_TRUE(close("dv", d.dv.data, theirs(n + ".dv"), tol_grad));
    if (tc.bias) {
      EXPECT_TRUE(close("dbias", d.dbias.data, theirs(n + ".dbias"), tol_grad));
    }
  }
}

}  // namespace
}  // namespace bignlp::ops
