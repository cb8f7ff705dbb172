"""PyTorch reference of GPT prompt learning, for tests/unit/tune/prompt_torch_test.cpp.

Usage: prompt_learning_reference.py IN.safetensors OUT.safetensors
IN holds the prompt encoder's weights under NeMo's names (prompt_encoder.*), optionally the GPT's
(model.*), and the inputs; the JSON metadata "case" says what to compute:
  {"mode": "encoder", "type": lstm|mlp|tpmlp, "n", "h", "eh", "num_layers"}
      inputs taskname_rows (L, h) and dout (n, h); OUT: out (n, h) and the gradient of every
      encoder weight of sum(out * dout), under its own name.
  {"mode": "step", ... encoder keys, "num_layers_lm", "heads", "pseudo_start", "pad", "lr", "betas",
   "eps", "weight_decay", "clip"}
      inputs tokens/labels/loss_mask (B, T) with virtual ids >= pseudo_start, taskname_ids (L);
      one p-tuning step: the encoder's rows scattered into the virtual positions (left to right),
      the GPT from its first layer, the masked token-mean loss, gradients of the encoder only
      (the GPT's tensors do not require grad), global-norm clipping, then one AdamW step (apex
      FusedAdam's adam_w_mode). OUT: loss, grad.<name> and new.<name> for every encoder weight.
The encoder is built from torch.nn modules (nn.LSTM bidirectional batch_first, nn.Linear, ReLU,
tanh-GeLU), i.e. as NeMo 1.13's PromptEncoder defines it, independently of bignlp; float64.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.dirname(__file__))
import safetensors_io  # noqa: E402

DT = torch.float64


class Encoder(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.kind, n, h, eh, layers = c["type"], c["n"], c["h"], c["eh"], c["num_layers"]
        self.embedding = torch.nn.Embedding(n, h)
        if self.kind == "lstm":
            self.lstm_head = torch.nn.LSTM(h, eh, num_layers=layers, bidirectional=True, batch_first=True)
            self.mlp_head = torch.nn.Sequential(torch.nn.Linear(2 * eh, 2 * eh), torch.nn.ReLU(), torch.nn.Linear(2 * eh, h))
        elif self.kind == "mlp":
            mods = [torch.nn.Linear(h, eh), torch.nn.ReLU()]
            for _ in range(layers - 2):
                mods += [torch.nn.Linear(eh, eh), torch.nn.ReLU()]
            mods.append(torch.nn.Linear(eh, h))
            self.mlp_head = torch.nn.Sequential(*mods)
        else:
            self.tpmlp = torch.nn.ModuleDict({"first": torch.nn.Linear(h, eh), "second": torch.nn.Linear(eh, h)})
        self.to(DT)

    def load(self, tensors):
        own = dict(self.named_parameters())
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(tensors["prompt_encoder." + name].to(DT))

    def forward(self, taskname_rows):
        x = self.embedding.weight.unsqueeze(0)  # [1, n, h]
        L = min(taskname_rows.shape[0], x.shape[1])
        x = torch.cat([taskname_rows[:L].unsqueeze(0), x[:, L:]], dim=1)
        if self.kind == "lstm":
            return self.mlp_head(self.lstm_head(x)[0])[0]
        if self.kind == "mlp":
            return self.mlp_head(x)[0]
        return self.tpmlp["second"](F.gelu(self.tpmlp["first"](x), approximate="tanh"))[0]


def gpt_from_embeddings(x, t, c):
    """GPT (pre-LN, LayerNorm, tanh GeLU, causal attention, tied output) from [s, b, h] inputs."""
    prefix = "model.language_model."
    L, nh = c["num_layers_lm"], c["heads"]
    T, B, H = x.shape
    hn = H // nh
    p = {k: v.to(DT) for k, v in t.items() if k.startswith("model.")}

    def lin(y, name):
        y = y @ p[name + ".weight"].t()
        return y + p[name + ".bias"] if name + ".bias" in p else y

    def ln(y, name):
        return F.layer_norm(y, (H,), p[name + ".weight"], p[name + ".bias"], 1e-5)

    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(L):
        lp = f"{prefix}encoder.layers.{l}."
        qkv = lin(ln(x, lp + "input_layernorm"), lp + "self_attention.query_key_value").view(T, B, nh, 3, hn)
        q, k, v = (qkv[:, :, :, i, :].permute(1, 2, 0, 3) for i in range(3))
        probs = torch.softmax(((q @ k.transpose(-1, -2)) / math.sqrt(hn)).masked_fill(causal, float("-inf")), dim=-1)
        ctx = (probs @ v).permute(2, 0, 1, 3).reshape(T, B, H)
        x = x + lin(ctx, lp + "self_attention.dense")
        x = x + lin(F.gelu(lin(ln(x, lp + "post_attention_layernorm"), lp + "mlp.dense_h_to_4h"), approximate="tanh"),
                    lp + "mlp.dense_4h_to_h")
    x = ln(x, prefix + "encoder.final_layernorm")
    return x @ p[prefix + "embedding.word_embeddings.weight"].t()


def main(inp, outp):
    t, meta = safetensors_io.load(inp)
    c = json.loads(meta["case"])
    enc = Encoder(c)
    enc.load(t)
    out = {}
    if c["mode"] == "encoder":
        y = enc(t["taskname_rows"].to(DT))
        (y * t["dout"].to(DT)).sum().backward()
        out["out"] = y.detach()
        for name, p in enc.named_parameters():
            out["prompt_encoder." + name] = p.grad
    else:
        word = t["model.language_model.embedding.word_embeddings.weight"].to(DT)
        pos = t["model.language_model.embedding.position_embeddings.weight"].to(DT)
        tokens, labels, mask = t["tokens"].long(), t["labels"].long(), t["loss_mask"].to(DT)
        B, T = tokens.shape
        virtual = tokens >= c["pseudo_start"]
        discrete = torch.where(virtual, torch.full_like(tokens, c["pad"]), tokens)
        rows = enc(word[t["taskname_ids"].long()])
        emb = word[discrete].clone()
        for b in range(B):
            idx = torch.nonzero(virtual[b]).flatten()
            emb[b, idx] = rows[: idx.numel()]
        x = (emb + pos[torch.arange(T)][None]).transpose(0, 1)  # [s, b, h]
        logits = gpt_from_embeddings(x, t, c)
        labels = torch.where(labels >= c["pseudo_start"], torch.full_like(labels, c["pad"]), labels)
        losses = F.cross_entropy(logits.reshape(T * B, -1), labels.t().reshape(-1), reduction="none").view(T, B)
        loss = (losses * mask.t()).sum() / mask.sum()
        loss.backward()
        out["loss"] = loss.detach().reshape(1)
        params = list(enc.named_parameters())
        for name, p in params:
            out["grad.prompt_encoder." + name] = p.grad.clone()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], c["clip"])
        opt = torch.optim.AdamW([p for _, p in params], lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"],
                                weight_decay=c["weight_decay"])
        opt.step()
        for name, p in params:
            out["new.prompt_encoder." + name] = p.detach()
    safetensors_io.save(outp, {k: v.to(torch.float32).contiguous() for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
