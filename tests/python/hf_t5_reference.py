"""Hugging Face T5 / mT5 architecture in PyTorch (written from the HF T5 definitions; transformers is
not needed), for tests/unit/model/hf_t5_test.cpp.

  hf_t5_reference.py write DIR VARIANT   random HF-layout checkpoint: DIR/config.json + DIR/model.safetensors
                                         VARIANT mt5 (gated-gelu, untied lm_head, T5 v1.1 / mT5 shape)
                                         or t5 (relu, tied embeddings: output rescaled by d_model^-0.5)
  hf_t5_reference.py requests DIR       DIR/requests.jsonl and the HF forward's DIR/expected.jsonl
  hf_t5_reference.py generate DIR PROMPTS.jsonl OUT.jsonl N   greedy decoding of N tokens per prompt
  hf_t5_reference.py score DIR IN OUT    IN: encoder_tokens (B, Te), encoder_lengths (B), decoder_input_ids
                                         (B, Td), decoder_lengths (B), labels (B, Td); OUT: logprob (B, Td)
                                         of the labels and logits (B, Td, V), float64 math

The model: T5LayerNorm (RMS, no bias, no mean subtraction), attention without 1/sqrt(d_kv), a
relative position bias from block 0's relative_attention_bias of each stack (bidirectional
buckets in the encoder, unidirectional in the decoder; none for cross-attention) plus the
additive mask (finfo.min on padded keys, causal in the decoder), DenseReluDense (wi, or gelu_new(wi_0)
* wi_1), residual adds, final layer norms, lm_head (or the shared embedding times d_model^-0.5).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

VARIANTS = {
    "mt5": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, model_type="mt5"),
    "t5": dict(feed_forward_proj="relu", tie_word_embeddings=True, model_type="t5"),
}


def write(out_dir, variant):
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(vocab_size=250, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3, num_heads=4,
               relative_attention_num_buckets=16, relative_attention_max_distance=20, dropout_rate=0.1,
               layer_norm_epsilon=1e-6, initializer_factor=1.0, decoder_start_token_id=0, pad_token_id=0,
               eos_token_id=1, is_encoder_decoder=True, **VARIANTS[variant])
    g = torch.Generator().manual_seed(1234 if variant == "mt5" else 4321)
    V, d, kv, ff, H = cfg["vocab_size"], cfg["d_model"], cfg["d_kv"], cfg["d_ff"], cfg["num_heads"]
    inner = H * kv
    t = {}

    def rnd(*shape, std=0.2):
        return torch.randn(*shape, generator=g) * std

    t["shared.weight"] = rnd(V, d, std=1.0)
    gated = cfg["feed_forward_proj"].startswith("gated")
    for stack, n in (("encoder", cfg["num_layers"]), ("decoder", cfg["num_decoder_layers"])):
        for i in range(n):
            b = f"{stack}.block.{i}.layer."
            subs = ["SelfAttention"] + (["EncDecAttention"] if stack == "decoder" else [])
            for k, sub in enumerate(subs):
                for p in "qkv":
                    t[f"{b}{k}.{sub}.{p}.weight"] = rnd(inner, d)
                t[f"{b}{k}.{sub}.o.weight"] = rnd(d, inner)
                t[f"{b}{k}.layer_norm.weight"] = 1.0 + rnd(d, std=0.1)
            if i == 0:
                t[f"{b}0.SelfAttention.relative_attention_bias.weight"] = rnd(cfg["relative_attention_num_buckets"], H,
                                                                               std=0.5)
            k = len(subs)
            if gated:
                t[f"{b}{k}.DenseReluDense.wi_0.weight"] = rnd(ff, d)
                t[f"{b}{k}.DenseReluDense.wi_1.weight"] = rnd(ff, d)
            else:
                t[f"{b}{k}.DenseReluDense.wi.weight"] = rnd(ff, d)
            t[f"{b}{k}.DenseReluDense.wo.weight"] = rnd(d, ff)
            t[f"{b}{k}.layer_norm.weight"] = 1.0 + rnd(d, std=0.1)
        t[f"{stack}.final_layer_norm.weight"] = 1.0 + rnd(d, std=0.1)
        t[f"{stack}.embed_tokens.weight"] = t["shared.weight"]
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = rnd(V, d, std=0.5)
    # HF stores half-precision checkpoints too: keep one tensor in fp16 to exercise the reader.
    t["encoder.final_layer_norm.weight"] = t["encoder.final_layer_norm.weight"].to(torch.float16)
    safetensors_io.save(os.path.join(out_dir, "model.safetensors"), {k: v.contiguous().clone() for k, v in t.items()},
                        {"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def bucket(rel, bidirectional, num_buckets, max_distance):
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets += (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, rel, large)


def load_model(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    w, _ = safetensors_io.load(os.path.join(d, "model.safetensors"))
    return cfg, {k: v.to(torch.float64) for k, v in w.items()}


def score(d, inp, outp):
    cfg, w = load_model(d)
    t, _ = safetensors_io.load(inp)
    enc_ids, dec_ids, labels = t["encoder_tokens"].long(), t["decoder_input_ids"].long(), t["labels"].long()
    enc_len, dec_len = t["encoder_lengths"].long(), t["decoder_lengths"].long()
    logits = model_logits(cfg, w, enc_ids, enc_len, dec_ids, dec_len)
    logprob = torch.log_softmax(logits, dim=-1).gather(-1, labels[..., None])[..., 0]
    safetensors_io.save(outp, {"logprob": logprob.float().contiguous(), "logits": logits.float().contiguous()})


def requests(d):
    """DIR/requests.jsonl (context -> encoder, continuation scored by the decoder from
    decoder_start_token_id) and DIR/expected.jsonl with the HF forward's results; half the
    continuations are the model's own greedy tokens."""
    cfg, w = load_model(d)
    g = torch.Generator().manual_seed(77)
    V = cfg["vocab_size"]
    start = cfg.get("decoder_start_token_id", 0)
    with open(os.path.join(d, "requests.jsonl"), "w") as rf, open(os.path.join(d, "expected.jsonl"), "w") as ef:
        for i in range(7):
            ctx = torch.randint(2, V, (int(torch.randint(1, 14, (1,), generator=g)),), generator=g)
            n = int(torch.randint(1, 6, (1,), generator=g))
            one = torch.tensor([len(ctx)])
            if i % 2 == 0:
                cont = []
                for _ in range(n):
                    dec = torch.tensor([[start] + cont])
                    logits = model_logits(cfg, w, ctx[None], one, dec, torch.tensor([dec.shape[1]]))
                    cont.append(int(logits[0, -1].argmax()))
                cont = torch.tensor(cont)
            else:
                cont = torch.randint(2, V, (n,), generator=g)
            dec = torch.cat([torch.tensor([start]), cont[:-1]])[None]
            logits = model_logits(cfg, w, ctx[None], one, dec, torch.tensor([n]))
            lp = torch.log_softmax(logits[0], dim=-1)
            total = float(lp.gather(-1, cont[:, None]).sum())
            greedy = bool((logits[0].argmax(-1) == cont).all())
            rf.write(json.dumps({"context": ctx.tolist(), "continuation": cont.tolist()}) + "\n")
            ef.write(json.dumps({"logprob": total, "is_greedy": greedy}) + "\n")


def generate(d, prompts, outp, n_tokens):
    """Greedy decoding of the HF architecture: each prompt line {"ids": [...]} is the encoder input,
    the decoder starts from decoder_start_token_id and takes N argmax tokens (no end token), each
    step a full forward of the decoder so far; writes {"ids": [generated], "cum_logprob": x}."""
    cfg, w = load_model(d)
    start = cfg.get("decoder_start_token_id", 0)
    with torch.no_grad(), open(prompts) as f, open(outp, "w") as out:
        for line in f:
            if not line.strip():
                continue
            ids = torch.tensor([json.loads(line)["ids"]])
            dec, cum = [start], 0.0
            for _ in range(n_tokens):
                logits = model_logits(cfg, w, ids, torch.tensor([ids.shape[1]]), torch.tensor([dec]),
                                      torch.tensor([len(dec)]))
                logp = torch.log_softmax(logits[0, -1], dim=-1)
                t = int(logp.argmax())
                cum += float(logp[t])
                dec.append(t)
            out.write(json.dumps({"ids": dec[1:], "cum_logprob": cum}) + "\n")


def model_logits(cfg, w, enc_ids, enc_len, dec_ids, dec_len):
    B, Te = enc_ids.shape
    Td = dec_ids.shape[1]
    H, kv, eps = cfg["num_heads"], cfg["d_kv"], cfg["layer_norm_epsilon"]
    proj = cfg["feed_forward_proj"]
    gated = proj.startswith("gated")
    act = {"relu": F.relu, "gelu": F.gelu, "gated-gelu": lambda z: F.gelu(z, approximate="tanh"),
           "gated-relu": F.relu, "gated-silu": F.silu}[proj]
    neg = torch.finfo(torch.float64).min

    def ln(x, name):
        return w[name] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def attn(x, kvx, prefix, bias_plus_mask):
        def heads(y):
            return y.view(B, -1, H, kv).transpose(1, 2)
        q = heads(x @ w[prefix + "q.weight"].t())
        k = heads(kvx @ w[prefix + "k.weight"].t())
        v = heads(kvx @ w[prefix + "v.weight"].t())
        scores = q @ k.transpose(-1, -2) + bias_plus_mask
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(B, -1, H * kv) @ w[prefix + "o.weight"].t()

    def rel_bias(name, q_len, k_len, bidirectional):
        rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
        b = bucket(rel, bidirectional, cfg["relative_attention_num_buckets"], cfg["relative_attention_max_distance"])
        return w[name][b].permute(2, 0, 1)[None]  # (1, H, q, k)

    def ff(x, prefix):
        h = ln(x, prefix + "layer_norm.weight")
        if gated:
            a = act(h @ w[prefix + "DenseReluDense.wi_0.weight"].t()) * (h @ w[prefix + "DenseReluDense.wi_1.weight"].t())
        else:
            a = act(h @ w[prefix + "DenseReluDense.wi.weight"].t())
        return x + a @ w[prefix + "DenseReluDense.wo.weight"].t()

    enc_keep = (torch.arange(Te)[None, :] < enc_len[:, None])
    dec_keep = (torch.arange(Td)[None, :] < dec_len[:, None])
    enc_mask = (1.0 - enc_keep[:, None, None, :].double()) * neg
    causal = torch.tril(torch.ones(Td, Td, dtype=torch.bool))
    dec_mask = (1.0 - (causal[None, None] & dec_keep[:, None, None, :]).double()) * neg

    x = w["shared.weight"][enc_ids]
    enc_bias = rel_bias("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", Te, Te, True) + enc_mask
    for i in range(cfg["num_layers"]):
        b = f"encoder.block.{i}.layer."
        x = x + attn(ln(x, b + "0.layer_norm.weight"), ln(x, b + "0.layer_norm.weight"), b + "0.SelfAttention.",
                     enc_bias)
        x = ff(x, b + "1.")
    enc = ln(x, "encoder.final_layer_norm.weight")

    y = w["shared.weight"][dec_ids]
    dec_bias = rel_bias("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", Td, Td, False) + dec_mask
    for i in range(cfg.get("num_decoder_layers", cfg["num_layers"])):
        b = f"decoder.block.{i}.layer."
        h = ln(y, b + "0.layer_norm.weight")
        y = y + attn(h, h, b + "0.SelfAttention.", dec_bias)
        y = y + attn(ln(y, b + "1.layer_norm.weight"), enc, b + "1.EncDecAttention.", enc_mask)
        y = ff(y, b + "2.")
    y = ln(y, "decoder.final_layer_norm.weight")
    if cfg.get("tie_word_embeddings", True):
        logits = (y * cfg["d_model"] ** -0.5) @ w["shared.weight"].t()
    else:
        logits = y @ w["lm_head.weight"].t()
    return logits


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "requests":
        requests(sys.argv[2])
    elif sys.argv[1] == "generate":
        generate(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        score(sys.argv[2], sys.argv[3], sys.argv[4])
