"""A tiny random Hugging Face GPT-2 checkpoint and PyTorch log-likelihoods for it.

Usage: hf_gpt2_reference.py OUT_DIR [--no-prefix] [--fp16]
Writes OUT_DIR/config.json, OUT_DIR/model.safetensors (HF key names, Conv1D (in, out) layout,
"transformer." prefix unless --no-prefix; fp16 storage with --fp16), OUT_DIR/requests.jsonl and
OUT_DIR/expected.jsonl ({"logprob", "is_greedy"} per request, computed in float64 by the GPT-2
forward below, written independently of bignlp's layout: separate q/k/v blocks, gelu_new).
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

V, P, C, L, NH = 97, 24, 32, 2, 4


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def forward(w, ids):
    """Logits (T, V) for one sequence of ids, float64."""
    T = len(ids)
    hs = C // NH
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        g = lambda n: w[f"h.{i}.{n}"]  # noqa: E731
        h = torch.nn.functional.layer_norm(x, (C,), g("ln_1.weight"), g("ln_1.bias"), 1e-5)
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (z.view(T, NH, hs).transpose(0, 1) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h = torch.nn.functional.layer_norm(x, (C,), g("ln_2.weight"), g("ln_2.bias"), 1e-5)
        x = x + gelu_new(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias")) @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = torch.nn.functional.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], 1e-5)
    return x @ w["wte.weight"].t()


def main(out, prefix, fp16):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(L):
        shapes.update({f"h.{i}.ln_1.weight": (C,), f"h.{i}.ln_1.bias": (C,), f"h.{i}.ln_2.weight": (C,),
                       f"h.{i}.ln_2.bias": (C,), f"h.{i}.attn.c_attn.weight": (C, 3 * C), f"h.{i}.attn.c_attn.bias": (3 * C,),
                       f"h.{i}.attn.c_proj.weight": (C, C), f"h.{i}.attn.c_proj.bias": (C,),
                       f"h.{i}.mlp.c_fc.weight": (C, 4 * C), f"h.{i}.mlp.c_fc.bias": (4 * C,),
                       f"h.{i}.mlp.c_proj.weight": (4 * C, C), f"h.{i}.mlp.c_proj.bias": (C,)})
    w = {}
    for name, shape in shapes.items():
        base = 1.0 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight" else 0.0
        t = base + 0.2 * torch.randn(shape, generator=g)
        w[name] = t.to(torch.float16 if fp16 else torch.float32)
    stored = {("transformer." if prefix else "") + k: v for k, v in w.items()}
    if prefix:
        stored["lm_head.weight"] = w["wte.weight"]  # tied copy, as HF saves it
    safetensors_io.save(os.path.join(out, "model.safetensors"), stored, {"format": "pt"})
    config = {"model_type": "gpt2", "vocab_size": V, "n_positions": P, "n_embd": C, "n_layer": L, "n_head": NH,
              "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "initializer_range": 0.02}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    w64 = {k: v.to(torch.float64) for k, v in w.items()}
    rng = torch.Generator().manual_seed(1)
    requests = []
    for n_ctx, n_cont in [(5, 1), (3, 4), (10, 2), (1, 1), (20, 8), (7, 3), (2, 6)]:
        ids = torch.randint(0, V, (n_ctx + n_cont,), generator=rng).tolist()
        requests.append({"context": ids[:n_ctx], "continuation": ids[n_ctx:]})
    # A request whose continuation repeats the model's own greedy choices: is_greedy must be true.
    ctx = [3, 14, 15]
    seq = list(ctx)
    for _ in range(3):
        seq.append(int(forward(w64, seq)[-1].argmax()))
    requests.append({"context": ctx, "continuation": seq[3:]})
    with open(os.path.join(out, "requests.jsonl"), "w") as f, open(os.path.join(out, "expected.jsonl"), "w") as e:
        for r in requests:
            f.write(json.dumps(r) + "\n")
            ids = (r["context"] + r["continuation"])[-(P + 1):]  # oldest context dropped beyond P positions
            logits = forward(w64, ids[:-1])
            logp = logits.log_softmax(-1)
            n = len(r["continuation"])
            targets = ids[-n:]
            rows = range(len(ids) - 1 - n, len(ids) - 1)
            lp = sum(float(logp[row, t]) for row, t in zip(rows, targets))
            greedy = all(int(logits[row].argmax()) == t for row, t in zip(rows, targets))
            e.write(json.dumps({"logprob": lp, "is_greedy": greedy}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], "--no-prefix" not in sys.argv, "--fp16" in sys.argv)
