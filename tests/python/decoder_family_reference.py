"""PyTorch reference of a decoder-only model with a non-GPT block, for tests/unit/model/model_family_test.cpp.

Usage: decoder_family_reference.py IN.safetensors OUT.safetensors
IN holds the weights (NeMo-style names), tokens/labels/loss_mask (B, T) and the block as JSON
metadata ("block": normalization, activation, gated, bias, eps; "config": sizes). OUT receives
logits (B, T, Vp), loss, and the gradient of every weight under its own name.
The block is pre-norm: x1 = x + dense(attn(qkv(norm(x)))), out = x1 + fc2(mlp(norm(x1))), with a
head-interleaved fused QKV ([np, 3, hn] per head), causal softmax(q k^T / sqrt(hn)), learned
absolute positions, a final norm and the tied output layer; RMSNorm is x / sqrt(mean(x^2) + eps)
* w, SwiGLU is silu(x W1) * (x W2). Written from those definitions, independently of bignlp's
kernels, and computed in float64.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.dirname(__file__))
import safetensors_io  # noqa: E402


def main(inp, outp):
    t, meta = safetensors_io.load(inp)
    cfg = json.loads(meta["config"])
    blk = json.loads(meta["block"])
    dt = torch.float64
    prefix = "model.language_model."
    params = {k: v.to(dt).requires_grad_(True) for k, v in t.items() if k.startswith("model.")}
    L, nh, hn = cfg["num_layers"], cfg["num_attention_heads"], cfg["kv_channels"]
    eps = blk["eps"]

    def norm(x, name):
        w = params[name + ".weight"]
        b = params.get(name + ".bias")
        if blk["normalization"] == "rmsnorm":
            y = x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w
            return y + b if b is not None else y
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)

    def linear(x, name):
        y = x @ params[name + ".weight"].t()
        b = params.get(name + ".bias")
        return y + b if b is not None else y

    acts = {"silu": F.silu, "relu": F.relu, "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
            "gelu_erf": F.gelu}
    act = acts[blk["activation"]]

    tokens = t["tokens"].long()
    labels = t["labels"].long()
    mask = t["loss_mask"].to(dt)
    B, T = tokens.shape
    word = params[prefix + "embedding.word_embeddings.weight"]
    pos = params[prefix + "embedding.position_embeddings.weight"]
    x = word[tokens.t()] + pos[torch.arange(T)][:, None, :]  # [s, b, h]
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(L):
        lp = f"{prefix}encoder.layers.{l}."
        h = norm(x, lp + "input_layernorm")
        qkv = linear(h, lp + "self_attention.query_key_value").view(T, B, nh, 3, hn)
        q, k, v = (qkv[:, :, :, i, :].permute(1, 2, 0, 3) for i in range(3))  # [b, np, s, hn]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hn)
        probs = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        ctx = (probs @ v).permute(2, 0, 1, 3).reshape(T, B, nh * hn)
        x1 = x + linear(ctx, lp + "self_attention.dense")
        h2 = norm(x1, lp + "post_attention_layernorm")
        if blk["gated"]:
            a = act(linear(h2, lp + "mlp.dense_h_to_4h")) * linear(h2, lp + "mlp.dense_h_to_4h_2")
        else:
            a = act(linear(h2, lp + "mlp.dense_h_to_4h"))
        x = x1 + linear(a, lp + "mlp.dense_4h_to_h")
    x = norm(x, prefix + "encoder.final_layernorm")
    logits = x @ word.t()
    losses = F.cross_entropy(logits.reshape(T * B, -1), labels.t().reshape(-1), reduction="none").view(T, B)
    loss = (losses * mask.t()).sum() / mask.sum()
    loss.backward()
    out = {"logits": logits.transpose(0, 1).contiguous().detach(), "loss": loss.detach().reshape(1)}
    for k, v in params.items():
        out[k] = v.grad
    safetensors_io.save(outp, {k: v.to(torch.float32) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
