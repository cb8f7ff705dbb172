#!/usr/bin/python3
"""Reference T5 span-corruption samples (NeMo's T5Dataset, formats.md section 3) in Python/numpy.

An independent implementation of the algorithm for the C++ tests: it reads the Megatron .idx/.bin
files with numpy, builds the document-respecting samples mapping (Megatron's build_mapping:
std::mt19937 draws taken from numpy's RandomState, whose seeding is the same, and a small
MT19937-64 for the row shuffle), and masks every sample with numpy.random.RandomState(seed + idx)
using numpy's own shuffle / geometric / choice, as NeMo's create_masked_lm_predictions does.

Usage: t5_dataset_reference.py SPEC.json  -> JSON on stdout
SPEC: {"prefix", "doc_begin", "doc_end", "num_samples", "seq_length", "seq_length_dec", "seed",
       "masked_lm_prob", "short_seq_prob", "max_ngram_size", "mean_ngram_size" (or null),
       "geometric_dist", "favor_longer_ngrams", "whole_word_masking", "vocab_file" (or null),
       "cls", "sep", "bos", "eos", "pad", "sentinels": [...], "indices": [...]}
Output: {"mapping": [[first, end, target], ...], "samples": {idx: {"enc", "dec", "labels",
         "loss_mask"}}}
"""
import json
import sys

import numpy as np

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}


def read_indexed(prefix):
    raw = open(prefix + ".idx", "rb").read()
    assert raw[:9] == b"MMIDIDX\x00\x00", "bad magic"
    dtype = DTYPES[raw[17]]
    n = int(np.frombuffer(raw, np.uint64, 1, 18)[0])
    d = int(np.frombuffer(raw, np.uint64, 1, 26)[0])
    sizes = np.frombuffer(raw, np.int32, n, 34)
    pointers = np.frombuffer(raw, np.int64, n, 34 + 4 * n)
    doc_idx = np.frombuffer(raw, np.int64, d, 34 + 12 * n)
    data = np.fromfile(prefix + ".bin", dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    sentences = [data[p // itemsize:p // itemsize + s].astype(np.int64).tolist() for p, s in zip(pointers, sizes)]
    return sizes, doc_idx, sentences


class MT19937_64:
    """The 64-bit Mersenne Twister (std::mt19937_64)."""

    def __init__(self, seed):
        self.mt = [0] * 312
        self.mt[0] = seed & 0xFFFFFFFFFFFFFFFF
        for i in range(1, 312):
            prev = self.mt[i - 1]
            self.mt[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & 0xFFFFFFFFFFFFFFFF
        self.index = 312

    def __call__(self):
        if self.index >= 312:
            for i in range(312):
                x = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % 312] & 0x7FFFFFFF)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                self.mt[i] = self.mt[(i + 156) % 312] ^ xa
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & 0xFFFFFFFFFFFFFFFF


def build_mapping(doc_idx, sizes, max_num_samples, max_seq_length, short_seq_prob, seed, min_num_sent=1):
    ratio = int(round(1.0 / short_seq_prob)) if short_seq_prob > 0 else 0
    raw32 = np.random.RandomState(seed)  # same state as std::mt19937(seed); full-range uint32 = raw draws

    def target():
        if ratio == 0:
            return max_seq_length
        r = int(raw32.randint(0, 2 ** 32, dtype=np.uint32))
        if r % ratio == 0:
            return 2 + r % (max_seq_length - 1)
        return max_seq_length

    rows = []
    while len(rows) < max_num_samples:
        before = len(rows)
        for doc in range(len(doc_idx) - 1):
            first, last = int(doc_idx[doc]), int(doc_idx[doc + 1])
            remain = last - first
            if remain > 1 and any(int(sizes[s]) > 512 for s in range(first, last)):
                continue
            if remain < min_num_sent:
                continue
            start, seq_len, num_sent, tgt = first, 0, 0, target()
            for s in range(first, last):
                seq_len += int(sizes[s])
                num_sent += 1
                remain -= 1
                if (seq_len >= tgt and remain > 1 and num_sent >= min_num_sent) or remain == 0:
                    rows.append([start, s + 1, tgt])
                    start, seq_len, num_sent, tgt = s + 1, 0, 0, target()
        assert len(rows) > before, "no samples"
    gen = MT19937_64(seed + 1)
    for i in range(len(rows) - 1, 0, -1):
        j = gen() % (i + 1)
        rows[i], rows[j] = rows[j], rows[i]
    return rows


def mask(tokens, spec, continuation, max_predictions, rng):
    cand = []
    for i, t in enumerate(tokens):
        if t == spec["cls"] or t == spec["sep"]:
            continue
        if spec["whole_word_masking"] and cand and continuation(t):
            cand[-1].append(i)
        else:
            cand.append([i])
    if spec["masked_lm_prob"] == 0:
        return []
    num_to_predict = min(max_predictions, max(1, int(round(len(tokens) * spec["masked_lm_prob"]))))
    max_n = spec["max_ngram_size"]
    ngrams = np.arange(1, max_n + 1, dtype=np.int64)
    if not spec["geometric_dist"]:
        pvals = 1.0 / np.arange(1, max_n + 1)
        pvals /= pvals.sum(keepdims=True)
        if spec["favor_longer_ngrams"]:
            pvals = pvals[::-1]
    ngram_indexes = [[cand[idx:idx + n] for n in ngrams] for idx in range(len(cand))]
    rng.shuffle(ngram_indexes)
    masked, spans, covered = 0, [], set()
    for cand_set in ngram_indexes:
        if masked >= num_to_predict:
            break
        if not spec["geometric_dist"]:
            k = len(cand_set)
            n = rng.choice(ngrams[:k], p=pvals[:k] / pvals[:k].sum(keepdims=True))
        else:
            p = 1.0 / spec["mean_ngram_size"] if spec["mean_ngram_size"] is not None else 0.2
            n = min(rng.geometric(p), max_n)
        index_set = sum(cand_set[n - 1], [])
        n -= 1
        while masked + len(index_set) > num_to_predict:
            if n == 0:
                break
            index_set = sum(cand_set[n - 1], [])
            n -= 1
        if masked + len(index_set) > num_to_predict:
            continue
        if any(i in covered for i in index_set):
            continue
        covered.update(index_set)
        masked += len(index_set)
        spans.append((index_set, [tokens[i] for i in index_set]))
    return sorted(spans, key=lambda s: s[0][0])


def sample(idx, rows, sentences, spec, continuation):
    rng = np.random.RandomState(seed=spec["seed"] + idx)
    first, end, target = rows[idx]
    tokens = [t for s in range(first, end) for t in sentences[s]][:target]
    spans = mask(tokens, spec, continuation, spec["masked_lm_prob"] * target, rng)
    sentinels = list(spec["sentinels"])
    enc, dec, labels, start = [], [spec["bos"]], [], 0
    for k, (positions, span_labels) in enumerate(spans):
        flag = sentinels[k]
        dec += [flag] + span_labels
        labels += [flag] + span_labels
        enc += tokens[start:positions[0]] + [flag]
        start = positions[-1] + 1
    labels.append(spec["eos"])
    enc += tokens[start:]
    te, td = spec["seq_length"], spec["seq_length_dec"]
    assert len(enc) <= te and len(dec) <= td
    n_dec = len(dec)
    return {"enc": enc + [spec["pad"]] * (te - len(enc)), "dec": dec + [spec["pad"]] * (td - n_dec),
            "labels": labels + [-1] * (td - len(labels)), "loss_mask": [1] * n_dec + [0] * (td - n_dec)}


def main():
    spec = json.load(open(sys.argv[1]))
    sizes, doc_idx, sentences = read_indexed(spec["prefix"])
    docs = doc_idx[spec["doc_begin"]:spec["doc_end"] + 1]
    rows = build_mapping(docs, sizes, spec["num_samples"], spec["seq_length"] - 2, spec["short_seq_prob"], spec["seed"])
    vocab = None
    if spec.get("vocab_file"):
        vocab = [line.rstrip("\n") for line in open(spec["vocab_file"], encoding="utf-8")]

    def continuation(t):
        return vocab is not None and 0 <= t < len(vocab) and vocab[t].startswith("##")

    out = {"mapping": rows, "samples": {}}
    for idx in spec["indices"]:
        out["samples"][str(idx)] = sample(idx, rows, sentences, spec, continuation)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
