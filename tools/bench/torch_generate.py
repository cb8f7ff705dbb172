"""PyTorch peer of bench_generate: a GPT (Megatron layout) with a KV cache, greedy, fp32, on the CPU.

Usage: torch_generate.py --weights W.safetensors --prompts P.txt --layers L --heads H --decode N --vocab V [--threads T]
Reads bignlp's weights (NeMo state-dict names, fused head-interleaved QKV) and one prompt per line
(space-separated ids, all of one length), runs the context phase on the whole batch, then N - 1
decode steps against the cache. Prints "torch: prompt S s, decode S s" and the generated tokens.
"""
import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "python"))
import safetensors_io  # noqa: E402

E = "model.language_model.embedding."
L = "model.language_model.encoder."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights")
    ap.add_argument("--prompts")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--decode", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    w, _ = safetensors_io.load(a.weights)
    prompts = [[int(t) for t in line.split()] for line in open(a.prompts) if line.strip()]
    ids = torch.tensor(prompts, dtype=torch.long)
    B, T = ids.shape
    C = w[E + "word_embeddings.weight"].shape[1]
    NH, hs = a.heads, C // a.heads
    wte, wpe = w[E + "word_embeddings.weight"], w[E + "position_embeddings.weight"]
    layers = []
    for i in range(a.layers):
        p = f"{L}layers.{i}."
        g = lambda n: w[p + n]  # noqa: E731
        # Megatron's fused QKV rows are [heads, 3, hs]: regroup into q, k, v blocks once.
        wq = g("self_attention.query_key_value.weight").view(NH, 3, hs, C)
        bq = g("self_attention.query_key_value.bias").view(NH, 3, hs)
        layers.append(dict(
            ln1=(g("input_layernorm.weight"), g("input_layernorm.bias")),
            wqkv=wq.transpose(0, 1).reshape(3 * C, C).t().contiguous(), bqkv=bq.transpose(0, 1).reshape(3 * C),
            wd=g("self_attention.dense.weight").t().contiguous(), bd=g("self_attention.dense.bias"),
            ln2=(g("post_attention_layernorm.weight"), g("post_attention_layernorm.bias")),
            w1=g("mlp.dense_h_to_4h.weight").t().contiguous(), b1=g("mlp.dense_h_to_4h.bias"),
            w2=g("mlp.dense_4h_to_h.weight").t().contiguous(), b2=g("mlp.dense_4h_to_h.bias")))
    lnf = (w[L + "final_layernorm.weight"], w[L + "final_layernorm.bias"])
    head = wte[:a.vocab].t().contiguous()
    cache = [None] * a.layers

    def step(tok, start):
        n = tok.shape[1]
        x = wte[tok] + wpe[start:start + n]
        for i, l in enumerate(layers):
            h = torch.nn.functional.layer_norm(x, (C,), *l["ln1"], 1e-5)
            q, k, v = (h @ l["wqkv"] + l["bqkv"]).split(C, dim=-1)
            q, k, v = (z.view(B, n, NH, hs).transpose(1, 2) for z in (q, k, v))
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
            if n > 1:  # causal: query start+i sees keys 0..start+i
                tk = k.shape[2]
                mask = torch.arange(tk).view(1, tk) > (torch.arange(n).view(n, 1) + tk - n)
                att = att.masked_fill(mask, float("-inf"))
            y = att.softmax(-1) @ v
            x = x + y.transpose(1, 2).reshape(B, n, C) @ l["wd"] + l["bd"]
            h = torch.nn.functional.layer_norm(x, (C,), *l["ln2"], 1e-5)
            x = x + torch.nn.functional.gelu(h @ l["w1"] + l["b1"], approximate="tanh") @ l["w2"] + l["b2"]
        return torch.nn.functional.layer_norm(x[:, -1], (C,), *lnf, 1e-5) @ head

    with torch.inference_mode():
        t0 = time.perf_counter()
        out = [step(ids, 0).argmax(-1)]
        t1 = time.perf_counter()
        for s in range(1, a.decode):
            out.append(step(out[-1].view(B, 1), T + s - 1).argmax(-1))
        t2 = time.perf_counter()
    print(f"torch: prompt {t1 - t0} s, decode {t2 - t1} s")
    gen = torch.stack(out, 1).tolist()
    print("tokens: " + " ".join(",".join(str(t) for t in row) for row in gen))


if __name__ == "__main__":
    main()
