"""A tiny random Hugging Face GPT-2 with the real GPT-2 vocabulary (50257 tokens), for serving tests.

Usage: tiny_gpt2_bpe.py OUT_DIR VOCAB_JSON MERGES_TXT
Writes OUT_DIR/config.json and OUT_DIR/model.safetensors (random weights, 2 layers of width 32,
64 positions) and copies the GPT-2 vocab.json/merges.txt next to them, so bignlp-convert records
the tokenizer.
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

V, P, C, L = 50257, 64, 32, 2


def main(out, vocab, merges):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(L):
        shapes.update({f"h.{i}.ln_1.weight": (C,), f"h.{i}.ln_1.bias": (C,), f"h.{i}.ln_2.weight": (C,),
                       f"h.{i}.ln_2.bias": (C,), f"h.{i}.attn.c_attn.weight": (C, 3 * C), f"h.{i}.attn.c_attn.bias": (3 * C,),
                       f"h.{i}.attn.c_proj.weight": (C, C), f"h.{i}.attn.c_proj.bias": (C,),
                       f"h.{i}.mlp.c_fc.weight": (C, 4 * C), f"h.{i}.mlp.c_fc.bias": (4 * C,),
                       f"h.{i}.mlp.c_proj.weight": (4 * C, C), f"h.{i}.mlp.c_proj.bias": (C,)})
    w = {}
    for name, shape in shapes.items():
        base = 1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0
        w["transformer." + name] = base + 0.3 * torch.randn(shape, generator=g)
    safetensors_io.save(os.path.join(out, "model.safetensors"), w, {"format": "pt"})
    json.dump({"model_type": "gpt2", "vocab_size": V, "n_positions": P, "n_embd": C, "n_layer": L, "n_head": 4,
               "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5},
              open(os.path.join(out, "config.json"), "w"))
    shutil.copy(vocab, os.path.join(out, "vocab.json"))
    shutil.copy(merges, os.path.join(out, "merges.txt"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
