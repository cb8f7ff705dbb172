"""Greedy generation and beam search of a NeMo-layout T5 in PyTorch (the model of t5_reference.py,
float64), independently of bignlp, for tests/unit/infer/t5_generate_test.cpp.

Usage: t5_generate_reference.py WEIGHTS.safetensors PROMPTS.jsonl EXPECTED.jsonl N_TOKENS [BEAM_WIDTH]
WEIGHTS holds the weights under NeMo's names and the model config as JSON metadata "config"
(with decoder_start_token_id). Each prompt line ({"ids": [...]}) is the encoder's input; the
decoder starts from decoder_start_token_id and every step recomputes the full forward of the
decoder sequence so far (no cache). Greedy: N_TOKENS argmax tokens (no end token), written as
{"ids": [generated], "cum_logprob": x}. BEAM_WIDTH W > 1: FasterTransformer's beam search without
length penalty or end token (each beam offers its 2W best log-probs, the W best sums survive,
ties to the earlier candidate), written as the best beam plus all beams in rank order.
Log-probabilities are over the real vocabulary (config vocab_size), as the engine samples them.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
import t5_reference  # noqa: E402


def main(weights, prompts, expected, n_tokens, width):
    t, meta = safetensors_io.load(weights)
    cfg = json.loads(meta["config"])
    params = {k: v.to(torch.float64) for k, v in t.items() if k.startswith("enc_dec_model.")}
    start = int(cfg["decoder_start_token_id"])
    vocab = int(cfg["vocab_size"])

    def next_logprobs(ids, dec):
        enc = torch.tensor([ids])
        d = torch.tensor([dec])
        logits = t5_reference.model_logits(params, cfg, enc, d, torch.tensor([len(ids)]), torch.tensor([len(dec)]))
        return logits[-1, 0, :vocab].log_softmax(-1)

    with torch.no_grad(), open(prompts) as f, open(expected, "w") as out:
        for line in f:
            if not line.strip():
                continue
            ids = json.loads(line)["ids"]
            if width == 1:
                dec, cum = [start], 0.0
                for _ in range(n_tokens):
                    logp = next_logprobs(ids, dec)
                    tok = int(logp.argmax())
                    cum += float(logp[tok])
                    dec.append(tok)
                out.write(json.dumps({"ids": dec[1:], "cum_logprob": cum}) + "\n")
                continue
            beams = [(0.0, [])]
            for _ in range(n_tokens):
                cands = []
                for score, gen in beams:
                    logp = next_logprobs(ids, [start] + gen)
                    top = torch.topk(logp, 2 * width)
                    cands += [(score + float(v), gen + [int(i)]) for v, i in zip(top.values, top.indices)]
                cands.sort(key=lambda c: -c[0])
                beams = cands[:width]
            out.write(json.dumps({"ids": beams[0][1], "cum_logprob": beams[0][0],
                                  "beams": [{"ids": g, "cum_logprob": s} for s, g in beams]}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
