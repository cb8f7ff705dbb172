"""Greedy generation and beam search of the tiny random Hugging Face GPT-2 of hf_gpt2_reference.py,
in PyTorch, independently of bignlp.

Usage: hf_gpt2_generate_reference.py HF_DIR PROMPTS.jsonl EXPECTED.jsonl N_TOKENS [BEAM_WIDTH]
Reads HF_DIR/model.safetensors (written by hf_gpt2_reference.py), generates N_TOKENS tokens per
prompt line ({"ids": [...]}) by a greedy loop over the full float64 forward (no end token), and
writes {"ids": [generated], "cum_logprob": x} per line. With BEAM_WIDTH W > 1: FasterTransformer's
GPT beam search without length penalty (each beam offers its 2W best log-probs, the W best sums
survive, no end token), writing the best beam's ids and score plus all beams in rank order.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import hf_gpt2_reference as ref  # noqa: E402
import safetensors_io  # noqa: E402


def main(hf_dir, prompts, expected, n_tokens, width):
    stored, _ = safetensors_io.load(os.path.join(hf_dir, "model.safetensors"))
    w = {k[len("transformer."):] if k.startswith("transformer.") else k: v.to(torch.float64)
         for k, v in stored.items() if k != "lm_head.weight"}
    with open(prompts) as f, open(expected, "w") as out:
        for line in f:
            if not line.strip():
                continue
            ids = json.loads(line)["ids"]
            if width == 1:
                seq, cum = list(ids), 0.0
                for _ in range(n_tokens):
                    logp = ref.forward(w, seq)[-1].log_softmax(-1)
                    t = int(logp.argmax())
                    cum += float(logp[t])
                    seq.append(t)
                out.write(json.dumps({"ids": seq[len(ids):], "cum_logprob": cum}) + "\n")
                continue
            beams = [(0.0, [])]
            for _ in range(n_tokens):
                cands = []
                for score, gen in beams:
                    logp = ref.forward(w, ids + gen)[-1].log_softmax(-1)
                    top = torch.topk(logp, 2 * width)
                    cands += [(score + float(v), gen + [int(i)]) for v, i in zip(top.values, top.indices)]
                cands.sort(key=lambda c: -c[0])
                beams = cands[:width]
            out.write(json.dumps({"ids": beams[0][1], "cum_logprob": beams[0][0],
                                  "beams": [{"ids": g, "cum_logprob": s} for s, g in beams]}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
