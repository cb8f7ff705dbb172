"""Hugging Face GPT-2 forward of an exported directory, for tests/unit/export/hf_export_test.cpp.

Usage: hf_export_reference.py HF_DIR TOKENS.safetensors OUT.safetensors
Reads HF_DIR/config.json and HF_DIR/model.safetensors the way transformers' GPT2LMHeadModel does
(keys with or without "transformer.", Conv1D weights (in, out), c_attn columns [q | k | v], tied
lm_head, activation_function gelu_new = tanh GeLU / gelu = erf GeLU) and computes the logits
(B, T, vocab_size) of "tokens" (B, T) in float64. Writes "logits".
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402


def main(d, tokens_file, out):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"], cfg
    raw, _ = safetensors_io.load(os.path.join(d, "model.safetensors"))
    w = {k[len("transformer."):] if k.startswith("transformer.") else k: v.to(torch.float64) for k, v in raw.items()}
    C, NH, L, V = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["vocab_size"]
    eps = cfg["layer_norm_epsilon"]
    act = cfg["activation_function"]
    assert w["wte.weight"].shape == (V, C), w["wte.weight"].shape
    tokens = safetensors_io.load(tokens_file)[0]["tokens"].long()
    B, T = tokens.shape
    hs = C // NH
    outs = []
    for b in range(B):
        ids = tokens[b]
        x = w["wte.weight"][ids] + w["wpe.weight"][:T]
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for i in range(L):
            g = lambda n: w[f"h.{i}.{n}"]  # noqa: E731
            h = F.layer_norm(x, (C,), g("ln_1.weight"), g("ln_1.bias"), eps)
            q, k, v = (h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")).split(C, dim=-1)
            q, k, v = (z.view(T, NH, hs).transpose(0, 1) for z in (q, k, v))
            att = ((q @ k.transpose(-1, -2)) / math.sqrt(hs)).masked_fill(~mask, float("-inf")).softmax(-1)
            x = x + (att @ v).transpose(0, 1).reshape(T, C) @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
            h = F.layer_norm(x, (C,), g("ln_2.weight"), g("ln_2.bias"), eps)
            m = h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias")
            m = F.gelu(m, approximate="tanh" if act in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh") else "none")
            x = x + m @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
        x = F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], eps)
        outs.append(x @ w.get("lm_head.weight", w["wte.weight"]).t())
    safetensors_io.save(out, {"logits": torch.stack(outs).to(torch.float32)})


if __name__ == "__main__":
    main(*sys.argv[1:4])
