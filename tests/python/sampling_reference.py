"""FasterTransformer's sampling semantics on fixed logits, written independently of bignlp.

Usage: sampling_reference.py OUT.json
Writes {"cases": [...]}: each case has fp32 logits, a history (prompt + generated tokens), the
number generated, the sampling settings and, for `draws` consecutive draws of one seeded XORWOW
stream (curand_init(seed, 0, 0), curand_uniform), the token FT's rules pick, its output log-prob
and its cum log-prob increment (float64 math on the processed fp32 logits).
Rules (FT v5.3, reference/inference-facts.md §2): bad words -> temperature l/(T+1e-6) ->
repetition (l/p if l >= 0 else l*p) or presence (l - p) over distinct history ids -> min_length
(end_id = -FLT_MAX) -> top-k (r = u*p*S_k over the k best, first with r <= 0) or top-p (probs with
+1e-6 in the denominator, arg-max if its prob >= p, else first sorted id whose cumulative >= u*p).
"""
import json
import math
import sys

import numpy as np

M32 = 0xFFFFFFFF
FLT_MAX = 3.4028234663852886e38


class Xorwow:
    def __init__(self, seed):
        s0 = (seed & M32) ^ 0xAAD26B49
        s1 = ((seed >> 32) & M32) ^ 0xF7DCEFDD
        t0 = (1099087573 * s0) & M32
        t1 = (2591861531 * s1) & M32
        self.d = (6615241 + t1 + t0) & M32
        self.v = [(123456789 + t0) & M32, 362436069 ^ t0, (521288629 + t1) & M32, 88675123 ^ t1, (5783321 + t0) & M32]

    def next(self):
        v = self.v
        t = v[0] ^ (v[0] >> 2)
        v[0], v[1], v[2], v[3] = v[1], v[2], v[3], v[4]
        v[4] = ((v[4] ^ ((v[4] << 4) & M32)) ^ (t ^ ((t << 1) & M32))) & M32
        self.d = (self.d + 362437) & M32
        return (v[4] + self.d) & M32

    def uniform(self):
        inv = np.float32(2.3283064e-10)
        return float(np.float32(np.float32(self.next()) * inv + inv / np.float32(2.0)))


def process(logits, history, generated, c):
    l = np.array(logits, dtype=np.float32)
    for w in c.get("bad_words", []):
        if len(w) == 1 or (len(history) >= len(w) - 1 and history[len(history) - len(w) + 1:] == w[:-1]):
            l[w[-1]] = -np.inf
    t = c.get("temperature", 1.0)
    if t != 1.0:
        l = l * np.float32(np.float32(1.0) / (np.float32(t) + np.float32(1e-6)))
    rp, pp = c.get("repetition_penalty", 1.0), c.get("presence_penalty", 0.0)
    for i in sorted(set(history)):
        if rp != 1.0:
            l[i] = l[i] * np.float32(rp) if l[i] < 0 else l[i] / np.float32(rp)
        elif pp != 0.0:
            l[i] = l[i] - np.float32(pp)
    if "end_id" in c and generated < c.get("min_length", 0):
        l[c["end_id"]] = -FLT_MAX
    return l.astype(np.float64)


def draw(l, c, u):
    k, p = c.get("top_k", 0), c.get("top_p", 0.0)
    if k == 0 and p == 0.0:
        k = 1
    if k > 0 and p == 0.0:
        p = 1.0
    lmax = l.max()
    e = np.exp(l - lmax)
    total = e.sum()
    order = sorted(range(len(l)), key=lambda i: (-l[i], i))
    if k > 0:
        cand = order[:k]
        sk = sum(e[i] for i in cand)
        r = u * p * sk
        pick = cand[-1]
        for i in cand:
            r -= e[i]
            if r <= 0:
                pick = i
                break
        return pick, math.log(e[pick] / sk), l[pick] - lmax - math.log(total)
    prob = e / (total + 1e-6)
    best = order[0]
    if prob[best] >= p:
        pick = best
    else:
        srt = sorted(range(len(l)), key=lambda i: (-prob[i], i))
        r, acc, pick = u * p, 0.0, srt[-1]
        for i in srt:
            acc += prob[i]
            if acc >= r:
                pick = i
                break
    return pick, math.log(prob[pick]), math.log(prob[pick])


def main(out):
    rng = np.random.default_rng(7)
    V = 40
    base = (rng.standard_normal(V) * 2.0).astype(np.float32)
    flat = (rng.standard_normal(V) * 0.3).astype(np.float32)  # a flat distribution: nucleus sets are large
    flat[5] = flat[9]  # a tie
    history = [3, 3, 17, 5, 29, 0]
    settings = [
        {},  # greedy
        {"top_k": 1},
        {"top_k": 5},
        {"top_k": 40},
        {"top_p": 0.5},
        {"top_p": 0.95},
        {"top_p": 0.01},  # fast path: arg-max
        {"top_k": 10, "top_p": 0.6},
        {"top_k": 0, "top_p": 0.9, "temperature": 0.7},
        {"top_k": 8, "temperature": 2.5},
        {"top_k": 6, "repetition_penalty": 1.8},
        {"top_p": 0.8, "presence_penalty": 0.9},
        {"top_k": 4, "end_id": 11, "min_length": 3},
        {"top_k": 4, "end_id": 11, "min_length": 2},
        {"top_k": 3, "bad_words": [[7], [5, 13], [29, 2], [0, 21]]},
        {"top_p": 0.7, "temperature": 0.5, "repetition_penalty": 0.6, "bad_words": [[3]]},
    ]
    cases = []
    for li, logits in enumerate([base, flat]):
        logits = logits.copy()
        if li == 0:
            logits[11] = logits.max() + 1.0  # end_id would win without min_length
        for si, s in enumerate(settings):
            seed = 1000 * li + 31 * si + (1 << 33) * (si % 3)
            gen = Xorwow(seed)
            l = process(logits.tolist(), history, 2, s)
            draws = []
            for _ in range(64):
                tok, lp, cum = draw(l, s, gen.uniform())
                draws.append({"token": int(tok), "log_prob": float(lp), "cum": float(cum)})
            cases.append({"logits": [float(x) for x in logits], "history": history, "generated": 2, "params": s,
                          "seed": seed, "processed": [float(x) if np.isfinite(x) else (-1e300 if x < 0 else 1e300)
                                                      for x in l], "draws": draws})
    g = Xorwow(12345)
    json.dump({"cases": cases, "xorwow_12345": [g.next() for _ in range(8)]}, open(out, "w"))


if __name__ == "__main__":
    main(sys.argv[1])
