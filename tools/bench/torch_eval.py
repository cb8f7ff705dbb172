"""The PyTorch peer of bench_eval: a GPT of the same shape (pre-LN, learned positions, tied output
layer, fp32, torch's default threads) scoring the same log-likelihood requests batched the same way:
longest (context + continuation) first, --batch-size sequences per forward pass, right-padded,
log-softmax of the continuation positions and their greedy check, under torch.no_grad().
Prints "torch: <r> requests/s" (after one warm-up batch)."""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, nh):
        super().__init__()
        self.nh = nh
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, self.nh, 3 * (c // self.nh)).split(c // self.nh, dim=-1)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0
            s = (q @ k.transpose(-1, -2)) / (c // self.nh) ** 0.5
            s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
            y = s.softmax(-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 12), ("hidden", 768), ("heads", 12), ("positions", 2048), ("vocab", 50304),
                          ("batch-size", 16)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--requests", required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    wte, wpe = nn.Embedding(a.vocab, a.hidden), nn.Embedding(a.positions, a.hidden)
    blocks = nn.ModuleList(Block(a.hidden, a.heads) for _ in range(a.layers))
    lnf = nn.LayerNorm(a.hidden)
    with open(a.requests) as f:
        reqs = [json.loads(l) for l in f if l.strip()]

    def score(batch):
        seqs = [(r["context"] + r["continuation"])[-(a.positions + 1):] for r in batch]
        t = max(len(s) - 1 for s in seqs)
        inp = torch.zeros(len(seqs), t, dtype=torch.long)
        for i, s in enumerate(seqs):
            inp[i, : len(s) - 1] = torch.tensor(s[:-1])
        x = wte(inp) + wpe(torch.arange(t))[None]
        for blk in blocks:
            x = blk(x)
        logp = F.log_softmax(lnf(x) @ wte.weight.t(), dim=-1)
        out = []
        for i, (s, r) in enumerate(zip(seqs, batch)):
            n, L = len(r["continuation"]), len(s) - 1
            tgt = torch.tensor(s[1:])[L - n:]
            lp = logp[i, L - n: L]
            out.append((lp.gather(-1, tgt[:, None]).sum().item(), bool((lp.argmax(-1) == tgt).all())))
        return out

    order = sorted(reqs, key=lambda r: -(len(r["context"]) + len(r["continuation"])))
    with torch.no_grad():
        score(order[: a.batch_size])
        t0 = time.perf_counter()
        for i in range(0, len(order), a.batch_size):
            score(order[i: i + a.batch_size])
        dt = time.perf_counter() - t0
    print(f"torch: {len(order) / dt:.2f} requests/s ({dt:.3f} s for {len(order)} requests, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
