#!/usr/bin/env python3
"""PyTorch peer of the CUDA benchmarks: the same GPT, attention and GEMM measured the way PyTorch
users get their best speed -- torch.compile, scaled_dot_product_attention, fused AdamW, bf16
autocast -- printing one JSON line per measurement in the schema of bench_gpt_cuda and
bench_cuda_kernels (tools/bench/bench_table.py reads both).

  torch_gpt.py --mode model --name gpt2-124m --layers 12 --hidden 768 --heads 12 --seq-length 1024 --micro-batch 16
  torch_gpt.py --mode attention        # SDPA forward and forward+backward, per backend, on the models' shapes
  torch_gpt.py --mode gemm             # torch.matmul bf16 8192^3 (cross-check of the device peak)

The model is bignlp's GPT: pre-LN blocks, learned positions, fused QKV, tanh GeLU, a 4C MLP,
biases everywhere, the output layer tied to the (padded) word embedding, fp32 master weights,
AdamW (betas 0.9/0.95, weight decay 0.1 on matrices) with gradient clipping at 1.0. Model FLOPs per
sequence follow the GPT-3 benchmark recipe (the same function as bignlp's model_flops_per_sequence):
T * (24 L C^2 + 12 L C T + 12 L C F + 6 Vp C).

--device cpu runs a tiny shape without torch.compile (syntax and logic check on machines with an
old CPU-only torch: scaled_dot_product_attention and fused AdamW are used only where they exist).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def emit(record):
    print(json.dumps(record), flush=True)


def padded_vocab(v, divisible_by=128):
    return (v + divisible_by - 1) // divisible_by * divisible_by


def model_flops_per_sequence(layers, hidden, seq, ffn, vocab_padded):
    attention = 24.0 * layers * hidden * hidden + 12.0 * layers * hidden * seq
    mlp = 12.0 * layers * hidden * ffn
    embedding = 6.0 * vocab_padded * hidden
    return seq * (attention + mlp + embedding)


def attention(q, k, v, dropout_p, training):
    """Causal attention on (B, NH, T, HS): SDPA where torch has it, else the explicit softmax."""
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p if training else 0.0, is_causal=True)
    t = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool, device=q.device), 1), float("-inf"))
    return F.dropout(s.softmax(-1), dropout_p, training) @ v


class Block(nn.Module):
    def __init__(self, c, nh, dropout):
        super().__init__()
        self.nh, self.dropout = nh, dropout
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        hs = c // self.nh
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=-1)
        q, k, v = (z.view(b, t, self.nh, hs).transpose(1, 2) for z in (q, k, v))
        y = attention(q, k, v, self.dropout, self.training).transpose(1, 2).reshape(b, t, c)
        x = x + F.dropout(self.proj(y), self.dropout, self.training)
        h = F.gelu(self.fc1(self.ln2(x)), approximate="tanh")
        return x + F.dropout(self.fc2(h), self.dropout, self.training)


class GPT(nn.Module):
    def __init__(self, vocab_padded, seq, layers, hidden, heads, dropout):
        super().__init__()
        self.dropout = dropout
        self.wte = nn.Embedding(vocab_padded, hidden)
        self.wpe = nn.Embedding(seq, hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)
        std, scaled = 0.02, 0.02 / math.sqrt(2.0 * layers)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, scaled if name.endswith(("proj.weight", "fc2.weight")) else std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, tokens, labels):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t, device=tokens.device))
        x = F.dropout(x, self.dropout, self.training)
        for blk in self.blocks:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1))


def make_optimizer(model, device):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = dict(lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    if device == "cuda":
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs), "fused"
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(groups, **kwargs), "default"


class Timer:
    """Per-step time: CUDA events on the GPU, the host clock on the CPU."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device == "cuda":
            self.start, self.stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            self.stop.record()
            self.stop.synchronize()
            self.ms = self.start.elapsed_time(self.stop)
        else:
            self.ms = (time.perf_counter() - self.t0) * 1e3


def run_model(a):
    device = a.device
    vp = padded_vocab(a.vocab)
    torch.manual_seed(1)
    model = GPT(vp, a.seq_length, a.layers, a.hidden, a.heads, a.dropout).to(device)
    opt, opt_kind = make_optimizer(model, device)
    compiled = model
    if a.compile and hasattr(torch, "compile"):
        compiled = torch.compile(model)
    tokens = torch.randint(0, a.vocab, (a.micro_batch, a.seq_length), device=device)
    labels = torch.roll(tokens, -1, dims=1)
    params = list(model.parameters())
    autocast_dtype = torch.bfloat16 if a.precision == "bf16" else torch.float16 if a.precision == "16" else None
    scaler = None
    if a.precision == "16" and device == "cuda":
        scaler = torch.amp.GradScaler("cuda") if hasattr(torch.amp, "GradScaler") else torch.cuda.amp.GradScaler()
    times, losses = [], []
    for step in range(a.warmup + a.steps):
        if step == a.warmup and device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with Timer(device) as tm:
            opt.zero_grad(set_to_none=True)
            if autocast_dtype is not None:
                with torch.autocast(device_type=device, dtype=autocast_dtype):
                    loss = compiled(tokens, labels)
            else:
                loss = compiled(tokens, labels)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
        losses.append(loss.item())
        if step >= a.warmup:
            times.append(tm.ms)
    step_ms = statistics.median(times)
    flops = a.micro_batch * model_flops_per_sequence(a.layers, a.hidden, a.seq_length, 4 * a.hidden, vp)
    tflops = flops / (step_ms * 1e-3) / 1e12
    record = {
        "bench": "gpt", "impl": "torch", "name": a.name, "params": sum(p.numel() for p in params),
        "layers": a.layers, "hidden": a.hidden, "heads": a.heads, "seq": a.seq_length, "micro_batch": a.micro_batch,
        "precision": a.precision, "dropout": a.dropout, "step_ms": round(step_ms, 2), "step_ms_min": round(min(times), 2),
        "step_ms_max": round(max(times), 2), "tokens_per_s": round(a.micro_batch * a.seq_length / (step_ms * 1e-3)),
        "tflops": round(tflops, 1), "mfu": round(tflops / a.peak_tflops, 4), "loss_first": round(losses[0], 4),
        "loss_last": round(losses[-1], 4), "torch": torch.__version__, "compiled": compiled is not model,
        "sdpa": HAS_SDPA, "adamw": opt_kind,
    }
    if device == "cuda":
        record["peak_alloc_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        record["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    emit(record)


def sdpa_backend_of_default(q, k, v):
    """Which SDPA kernel the default dispatch runs, read off the profiler's kernel names."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
    names = " ".join(e.key.lower() for e in prof.key_averages())
    for needle, backend in (("cudnn", "cudnn"), ("flash", "flash"), ("fmha", "efficient"),
                            ("mem_eff", "efficient"), ("efficient", "efficient")):
        if needle in names:
            return backend
    return "math"


def time_ms(fn, device, warmup=3, reps=20):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        with Timer(device) as tm:
            fn()
        times.append(tm.ms)
    return statistics.median(times)


def run_attention(a):
    device = a.device
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    cases = [("gpt2-124m", 16, 12, 1024, 64), ("gpt3-126m", 8, 12, 2048, 64), ("gpt-1.3b", 4, 16, 2048, 128)]
    if device != "cuda":
        cases = [("tiny", 2, 2, 64, 16)]
    backends = {}
    if device == "cuda":
        try:
            from torch.nn.attention import SDPBackend
            backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                        "cudnn": SDPBackend.CUDNN_ATTENTION}
        except ImportError:
            backends = {}
    for name, b, nh, t, hs in cases:
        q, k, v = (torch.randn(b, nh, t, hs, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
        dout = torch.randn(b, nh, t, hs, device=device, dtype=dtype)
        fwd_flops = 4.0 * b * nh * t * t * hs / 2.0
        default = sdpa_backend_of_default(q, k, v) if device == "cuda" and HAS_SDPA else "math"
        variants = [("default", None)] + list(backends.items())
        for label, backend in variants:
            def fwd():
                return attention(q, k, v, 0.0, False)

            def both():
                q.grad = k.grad = v.grad = None
                attention(q, k, v, 0.0, False).backward(dout)

            try:
                if backend is not None:
                    from torch.nn.attention import sdpa_kernel
                    with sdpa_kernel(backend):
                        f_ms, b_ms = time_ms(fwd, device), time_ms(both, device)
                else:
                    f_ms, b_ms = time_ms(fwd, device), time_ms(both, device)
            except RuntimeError as e:  # this backend does not support the case
                emit({"bench": "attention", "impl": "torch", "name": name, "backend": label, "error": str(e)[:200]})
                continue
            impl_backend = default if label == "default" else label
            for pass_name, ms, mult in (("fwd", f_ms, 1.0), ("fwd+bwd", b_ms, 3.5)):
                emit({"bench": "attention", "impl": "torch", "name": name, "pass": pass_name, "backend": impl_backend,
                      "dispatch": label, "b": b, "nh": nh, "t": t, "hs": hs, "ms": round(ms, 4),
                      "tflops": round(mult * fwd_flops / (ms * 1e-3) / 1e12, 1)})


def run_gemm(a):
    device = a.device
    n = 8192 if device == "cuda" else 256
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    x, y = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    ms = time_ms(lambda: x @ y, device)
    emit({"bench": "gemm", "impl": "torch", "name": f"torch.matmul {str(dtype).split('.')[-1]} {n}^3", "m": n, "n": n,
          "k": n, "ms": round(ms, 4), "tflops": round(2.0 * n ** 3 / (ms * 1e-3) / 1e12, 1)})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["model", "attention", "gemm"], default="model")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--name", default="gpt2-124m")
    for name, default in [("layers", 12), ("hidden", 768), ("heads", 12), ("seq-length", 1024), ("vocab", 50257),
                          ("micro-batch", 16), ("steps", 10), ("warmup", 3)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--precision", choices=["32", "bf16", "16"], default="bf16")
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    a = p.parse_args()
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("torch_gpt.py: CUDA is not available to this torch")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    {"model": run_model, "attention": run_attention, "gemm": run_gemm}[a.mode](a)


if __name__ == "__main__":
    main()
