"""PyTorch reference of one T5 fine-tuning step, for tests/unit/finetune/fine_tuning_step_test.cpp.

Usage: t5_finetune_step_reference.py IN.safetensors OUT.safetensors
IN holds the pre-trained weights under NeMo's state-dict names and, as JSON metadata:
  "config"   the T5 model config (as t5_reference.py reads it)
  "examples" [[src_ids, tgt_ids], ...]: the tokenizer's ids of each example's text, in run order
  "step"     {"bos", "eos", "pad", "max_src", "max_tgt", "micro_batch_size", "lr", "weight_decay",
              "betas", "eps", "clip"}
The step is written from tuning.md §6.3/§6.4 and Megatron's optimizer (megatron-model.md §2.4,
§3.1), independently of bignlp: each example becomes src = [bos] + ids + [eos], tgt likewise, a
sequence longer than its maximum keeps its last max - 1 tokens; micro-batches of
micro_batch_size consecutive examples are padded (pad id) to their longest rows, decoder input
tgt[:-1], labels tgt[1:], loss mask over the label length; each micro-batch's loss and gradients
come from t5_reference.py (float64); the objective is the mean of the micro-batch losses; the
gradients are clipped to global L2 norm `clip` (coefficient clip / (norm + 1e-6) when below 1);
then torch.optim.AdamW (decoupled weight decay, not on biases and LayerNorm weights) with the
constant learning rate. OUT: "loss" (1), "<name>" the weights after the step, "grad.<name>" the
clipped gradients.
"""
import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
import t5_reference  # noqa: E402


def sequence(ids, bos, eos, max_len):
    seq = [bos] + list(ids) + [eos]
    if len(seq) > max_len:
        seq = seq[-(max_len - 1):]
    return seq


def collate(rows, pad):
    te = max(len(s) for s, _ in rows)
    td = max(len(t) - 1 for _, t in rows)
    b = len(rows)
    enc = torch.full((b, te), pad, dtype=torch.int32)
    dec = torch.full((b, td), pad, dtype=torch.int32)
    lab = torch.full((b, td), pad, dtype=torch.int32)
    mask = torch.zeros((b, td), dtype=torch.float32)
    for i, (s, t) in enumerate(rows):
        enc[i, :len(s)] = torch.tensor(s)
        dec[i, :len(t) - 1] = torch.tensor(t[:-1])
        lab[i, :len(t) - 1] = torch.tensor(t[1:])
        mask[i, :len(t) - 1] = 1
    return {"encoder_tokens": enc, "tokens": dec, "labels": lab, "loss_mask": mask,
            "encoder_lengths": torch.tensor([len(s) for s, _ in rows], dtype=torch.int32),
            "decoder_lengths": torch.tensor([len(t) - 1 for _, t in rows], dtype=torch.int32)}


def main(inp, outp):
    t, meta = safetensors_io.load(inp)
    st = json.loads(meta["step"])
    examples = json.loads(meta["examples"])
    weights = {k: v for k, v in t.items() if k.startswith("enc_dec_model.")}
    rows = [(sequence(s, st["bos"], st["eos"], st["max_src"]), sequence(g, st["bos"], st["eos"], st["max_tgt"]))
            for s, g in examples]
    mbs = st["micro_batch_size"]
    micro = [rows[i:i + mbs] for i in range(0, len(rows), mbs)]
    grads = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in weights.items()}
    loss = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for j, mb in enumerate(micro):
            fin, fout = os.path.join(tmp, f"in{j}.safetensors"), os.path.join(tmp, f"out{j}.safetensors")
            safetensors_io.save(fin, {**weights, **collate(mb, st["pad"])}, {"config": meta["config"]})
            t5_reference.main(fin, fout)
            r, _ = safetensors_io.load(fout)
            loss += float(r["loss"][0]) / len(micro)
            for k in grads:
                grads[k] += r[k].to(torch.float64) / len(micro)
    norm = torch.sqrt(sum((g * g).sum() for g in grads.values()))
    coeff = st["clip"] / (float(norm) + 1e-6)
    if coeff < 1.0:
        grads = {k: g * coeff for k, g in grads.items()}
    params = {k: v.to(torch.float64).clone().requires_grad_(True) for k, v in weights.items()}
    decay = [p for k, p in params.items() if not (k.endswith(".bias") or "layernorm" in k)]
    no_decay = [p for k, p in params.items() if k.endswith(".bias") or "layernorm" in k]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": st["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=st["lr"], betas=tuple(st["betas"]), eps=st["eps"])
    for k, p in params.items():
        p.grad = grads[k].clone()
    opt.step()
    out = {"loss": torch.tensor([loss], dtype=torch.float32)}
    for k, p in params.items():
        out[k] = p.detach().to(torch.float32)
        out["grad." + k] = grads[k].to(torch.float32)
    safetensors_io.save(outp, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
