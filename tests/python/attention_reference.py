"""PyTorch reference of bignlp's general attention op, for tests/unit/ops/attention_torch_test.cpp.

Usage: attention_reference.py IN.safetensors OUT.safetensors
IN holds, for every case <c> listed in the JSON metadata "cases" (name, num_heads, scale, causal,
kv_offset, p): <c>.q (Tq, B, NH*HS), <c>.k and <c>.v (Tk, B, NH*HS), <c>.dout (Tq, B, NH*HS), and
optionally <c>.bias (NH, Tq, Tk), <c>.key_lengths (B) int32 and <c>.keep (B, NH, Tq, Tk), the
dropout keep mask (1/0) exported from bignlp's Philox stream.
OUT receives <c>.out, <c>.lse (B, NH, Tq; +inf for a query with no unmasked key), and the
gradients <c>.dq, <c>.dk, <c>.dv, <c>.dbias (summed over the batch) of sum(out * dout).
Written independently of the C++ op: an explicit (B, NH, Tq, Tk) probability tensor from
torch.softmax with the mask built element by element, float64 autograd, stored as float32.
"""
import json
import math
import sys

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
import safetensors_io  # noqa: E402


def allowed_mask(B, Tq, Tk, key_lengths, causal, kv_offset):
    """(B, Tq, Tk) bool: True where query i of batch row b may attend to key j."""
    m = torch.ones(B, Tq, Tk, dtype=torch.bool)
    for b in range(B):
        for i in range(Tq):
            for j in range(Tk):
                if key_lengths is not None and j >= int(key_lengths[b]):
                    m[b, i, j] = False
                if causal and j > kv_offset + i:
                    m[b, i, j] = False
    return m


def run_case(t, case):
    c = case["name"]
    dt = torch.float64
    nh = case["num_heads"]
    q = t[c + ".q"].to(dt).requires_grad_(True)
    k = t[c + ".k"].to(dt).requires_grad_(True)
    v = t[c + ".v"].to(dt).requires_grad_(True)
    dout = t[c + ".dout"].to(dt)
    bias = t[c + ".bias"].to(dt).requires_grad_(True) if c + ".bias" in t else None
    key_lengths = t.get(c + ".key_lengths")
    Tq, B, C = q.shape
    Tk = k.shape[0]
    hs = C // nh
    scale = case["scale"] if case["scale"] != 0.0 else 1.0 / math.sqrt(hs)

    def heads(x):  # (T, B, NH*HS) -> (B, NH, T, HS)
        return x.reshape(x.shape[0], B, nh, hs).permute(1, 2, 0, 3)

    scores = scale * torch.matmul(heads(q), heads(k).transpose(-1, -2))  # (B, NH, Tq, Tk)
    if bias is not None:
        scores = scores + bias.unsqueeze(0)
    allowed = allowed_mask(B, Tq, Tk, key_lengths, case["causal"], case["kv_offset"]).unsqueeze(1)
    allowed = allowed & torch.isfinite(scores.detach())  # a -inf bias masks its entry too
    empty = ~allowed.any(dim=-1, keepdim=True)  # (B, NH, Tq, 1): no key to attend to
    # Rows without any allowed key get zeros instead of softmax's NaN (their scores are replaced
    # by 0 before the softmax and their probabilities multiplied by 0 after it).
    masked = scores.masked_fill(~allowed, float("-inf")).masked_fill(empty, 0.0)
    probs = torch.softmax(masked, dim=-1) * allowed.to(dt)
    lse = torch.logsumexp(masked, dim=-1).masked_fill(empty.squeeze(-1), float("inf"))
    if case["p"] > 0.0:
        probs = probs * t[c + ".keep"].to(dt) / (1.0 - case["p"])
    out = torch.matmul(probs, heads(v)).permute(2, 0, 1, 3).reshape(Tq, B, C)
    (out * dout).sum().backward()
    res = {c + ".out": out.detach(), c + ".lse": lse.detach(), c + ".dq": q.grad, c + ".dk": k.grad,
           c + ".dv": v.grad}
    if bias is not None:
        res[c + ".dbias"] = bias.grad
    return res


def main(inp, outp):
    t, meta = safetensors_io.load(inp)
    res = {}
    for case in json.loads(meta["cases"]):
        res.update(run_case(t, case))
    safetensors_io.save(outp, {k: v.to(torch.float32) for k, v in res.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
