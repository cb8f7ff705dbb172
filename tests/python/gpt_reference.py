"""PyTorch reference of the Megatron GPT forward/backward, for tests/unit/model/gpt_torch_test.cpp.

Usage: gpt_reference.py IN.safetensors OUT.safetensors
IN holds the weights (NeMo state-dict names), tokens/labels/loss_mask (B, T), dropout keep masks
exported from bignlp's Philox streams (site names "mask.embedding", "mask.<l>.attention" (B, NH, T, T),
"mask.<l>.attention_out", "mask.<l>.mlp_out" (T, B, C)) and the config as JSON metadata.
OUT receives logits (B, T, Vp), loss, and the gradient of every weight under its own name (float32).
The math follows Megatron (megatron-model.md §1): sequence-first [s, b, h], pre-LN, head-interleaved
fused QKV, causal softmax, bias-dropout-add, tied output layer. Computed in float64.
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
    p_hidden = float(meta["hidden_dropout"])
    p_attn = float(meta["attention_dropout"])
    dt = torch.float64
    prefix = "model.language_model."
    params = {k: v.to(dt).requires_grad_(True) for k, v in t.items() if k.startswith("model.")}
    L, nh, hn = cfg["num_layers"], cfg["num_attention_heads"], cfg["kv_channels"]
    eps = cfg["layernorm_epsilon"]
    approx = "tanh" if cfg["activation"] == "gelu_tanh" else "none"

    tokens = t["tokens"].long()   # (B, T)
    labels = t["labels"].long()
    mask = t["loss_mask"].to(dt)
    B, T = tokens.shape
    word = params[prefix + "embedding.word_embeddings.weight"]
    pos = params[prefix + "embedding.position_embeddings.weight"]

    def drop(x, name, p):
        if p == 0.0:
            return x
        return x * t[name].to(dt) / (1.0 - p)

    x = word[tokens.t()] + pos[torch.arange(T)][:, None, :]  # [s, b, h]
    x = drop(x, "mask.embedding", p_hidden)
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(L):
        lp = f"{prefix}encoder.layers.{l}."
        g = lambda n: params[lp + n]  # noqa: E731
        h = F.layer_norm(x, (x.shape[-1],), g("input_layernorm.weight"), g("input_layernorm.bias"), eps)
        qkv = h @ g("self_attention.query_key_value.weight").t() + g("self_attention.query_key_value.bias")
        qkv = qkv.view(T, B, nh, 3 * hn)
        q, k, v = torch.split(qkv, hn, dim=-1)
        q, k, v = (z.permute(1, 2, 0, 3) for z in (q, k, v))  # [b, np, s, hn]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hn)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        probs = drop(probs, f"mask.{l}.attention", p_attn)
        ctx = (probs @ v).permute(2, 0, 1, 3).reshape(T, B, nh * hn)
        attn = ctx @ g("self_attention.dense.weight").t() + g("self_attention.dense.bias")
        x1 = x + drop(attn, f"mask.{l}.attention_out", p_hidden)
        h2 = F.layer_norm(x1, (x1.shape[-1],), g("post_attention_layernorm.weight"), g("post_attention_layernorm.bias"), eps)
        a = F.gelu(h2 @ g("mlp.dense_h_to_4h.weight").t() + g("mlp.dense_h_to_4h.bias"), approximate=approx)
        m = a @ g("mlp.dense_4h_to_h.weight").t() + g("mlp.dense_4h_to_h.bias")
        x = x1 + drop(m, f"mask.{l}.mlp_out", p_hidden)
    fl = prefix + "encoder.final_layernorm."
    x = F.layer_norm(x, (x.shape[-1],), params[fl + "weight"], params[fl + "bias"], eps)
    logits = x @ word.t()  # [s, b, Vp]
    losses = F.cross_entropy(logits.reshape(T * B, -1), labels.t().reshape(-1), reduction="none").view(T, B)
    loss = (losses * mask.t()).sum() / mask.sum()
    loss.backward()
    out = {"logits": logits.transpose(0, 1).contiguous().detach(), "loss": loss.detach().reshape(1)}
    for k, v in params.items():
        out[k] = v.grad
    safetensors_io.save(outp, {k: v.to(torch.float32) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
