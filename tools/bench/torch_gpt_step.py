"""The PyTorch peer of bench_gpt_train_step: the same GPT shape, one training step =
forward + backward + AdamW, fp32 on the CPU with torch's default threads. Prints
"torch: <seconds> s/step" (mean over --steps after one warm-up step)."""
import argparse
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
        t, b, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(t, b, self.nh, 3 * (c // self.nh)).split(c // self.nh, dim=-1)
        q, k, v = (z.permute(1, 2, 0, 3) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1, is_causal=True) if hasattr(F, "scaled_dot_product_attention") else None
        if y is None:
            s = (q @ k.transpose(-1, -2)) / (c // self.nh) ** 0.5
            s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
            y = F.dropout(s.softmax(-1), 0.1) @ v
        y = y.permute(2, 0, 1, 3).reshape(t, b, c)
        x = x + F.dropout(self.proj(y), 0.1)
        return x + F.dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh")), 0.1)


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 12), ("hidden", 768), ("heads", 12), ("seq-length", 2048), ("vocab", 50304),
                          ("micro-batch", 1), ("steps", 3)]:
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    wte, wpe = nn.Embedding(a.vocab, a.hidden), nn.Embedding(a.seq_length, a.hidden)
    blocks = nn.ModuleList(Block(a.hidden, a.heads) for _ in range(a.layers))
    lnf = nn.LayerNorm(a.hidden)
    for emb in (wte, wpe):
        nn.init.normal_(emb.weight, std=0.02)  # Megatron's init_method_std, as bignlp's model
    params = list(wte.parameters()) + list(wpe.parameters()) + list(blocks.parameters()) + list(lnf.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tokens = torch.randint(0, a.vocab, (a.seq_length, a.micro_batch))
    labels = torch.randint(0, a.vocab, (a.seq_length, a.micro_batch))
    times = []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        x = F.dropout(wte(tokens) + wpe(torch.arange(a.seq_length))[:, None, :], 0.1)
        for blk in blocks:
            x = blk(x)
        logits = lnf(x) @ wte.weight.t()
        loss = F.cross_entropy(logits.view(-1, a.vocab), labels.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        print(f"step {step}: {dt:.3f} s, loss {loss.item():.4f}", flush=True)
        if step > 0:
            times.append(dt)
    print(f"torch: {sum(times) / len(times):.4f} s/step (threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
