"""The PyTorch peer of bench_t5_train_step: the same NeMo-T5 shape (pre-LN encoder and decoder
stacks, GeGLU MLP, learned absolute positions shared by both stacks, tied head with the
tokens_head bias), one training step = forward + backward + AdamW, fp32 on the CPU with torch's
default threads, dropout 0.1. Prints "torch: <seconds> s/step" (mean over --steps after one
warm-up step) and this process's peak RSS."""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v, nh, hn, causal):
    # q [sq, b, nh*hn], k/v [sk, b, nh*hn]
    sq, b, sk = q.shape[0], q.shape[1], k.shape[0]
    q, k, v = (z.view(z.shape[0], b, nh, hn).permute(1, 2, 0, 3) for z in (q, k, v))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hn)
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(sq, sk, dtype=torch.bool), 1), float("-inf"))
    y = F.dropout(s.softmax(-1), 0.1) @ v
    return y.permute(2, 0, 1, 3).reshape(sq, b, nh * hn)


class Layer(nn.Module):
    def __init__(self, c, f, nh, hn, cross):
        super().__init__()
        self.nh, self.hn, self.cross = nh, hn, cross
        p = nh * hn
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.dense = nn.Linear(c, 3 * p), nn.Linear(p, c)
        if cross:
            self.lnc = nn.LayerNorm(c)
            self.q, self.kv, self.cdense = nn.Linear(c, p), nn.Linear(c, 2 * p), nn.Linear(p, c)
        self.fc1, self.fc1_2, self.fc2 = nn.Linear(c, f), nn.Linear(c, f), nn.Linear(f, c)

    def forward(self, x, enc=None):
        t, b, _ = x.shape
        qkv = self.qkv(self.ln1(x)).view(t, b, self.nh, 3, self.hn)
        q, k, v = (qkv[:, :, :, i].reshape(t, b, -1) for i in range(3))
        x = x + F.dropout(self.dense(attention(q, k, v, self.nh, self.hn, self.cross)), 0.1)
        if self.cross:
            q = self.q(self.lnc(x))
            kv = self.kv(enc).view(enc.shape[0], b, self.nh, 2, self.hn)
            k, v = (kv[:, :, :, i].reshape(enc.shape[0], b, -1) for i in range(2))
            x = x + F.dropout(self.cdense(attention(q, k, v, self.nh, self.hn, False)), 0.1)
        h = self.ln2(x)
        a = F.gelu(self.fc1(h), approximate="tanh") * self.fc1_2(h)
        return x + F.dropout(self.fc2(a), 0.1)


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 12), ("hidden", 768), ("ffn", 2048), ("heads", 12), ("kv-channels", 64),
                          ("encoder-seq", 512), ("decoder-seq", 128), ("vocab", 29184), ("micro-batch", 1),
                          ("steps", 2)]:
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    c, te, td, b = a.hidden, a.encoder_seq, a.decoder_seq, a.micro_batch
    word, pos = nn.Embedding(a.vocab, c), nn.Embedding(te, c)
    for emb in (word, pos):
        nn.init.normal_(emb.weight, std=0.015)
    head_bias = nn.Parameter(torch.zeros(a.vocab))
    enc = nn.ModuleList(Layer(c, a.ffn, a.heads, a.kv_channels, False) for _ in range(a.layers))
    dec = nn.ModuleList(Layer(c, a.ffn, a.heads, a.kv_channels, True) for _ in range(a.layers))
    enc_ln, dec_ln = nn.LayerNorm(c), nn.LayerNorm(c)
    params = [head_bias] + [q for m in (word, pos, enc, dec, enc_ln, dec_ln) for q in m.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01)
    enc_tokens = torch.randint(0, a.vocab, (te, b))
    dec_tokens = torch.randint(0, a.vocab, (td, b))
    labels = torch.randint(0, a.vocab, (td, b))
    times = []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        x = F.dropout(word(enc_tokens) + pos(torch.arange(te))[:, None, :], 0.1)
        for layer in enc:
            x = layer(x)
        e = enc_ln(x)
        y = F.dropout(word(dec_tokens) + pos(torch.arange(td))[:, None, :], 0.1)
        for layer in dec:
            y = layer(y, e)
        logits = dec_ln(y) @ word.weight.t() + head_bias
        loss = F.cross_entropy(logits.view(-1, a.vocab), labels.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        print(f"step {step}: {dt:.3f} s, loss {loss.item():.4f}", flush=True)
        if step > 0:
            times.append(dt)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch peak host memory: {peak:.1f} MiB (ru_maxrss)")
    print(f"torch: {sum(times) / len(times):.4f} s/step (threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
