"""SQuAD v1.1 exact match / F1 and NeMo's exact_string_match in plain Python, independently of
bignlp, for tests/unit/eval/generation_test.cpp.

Usage: squad_metrics_reference.py IN.json OUT.json
IN: {"items": [{"prediction": str, "answers": [str, ...]}, ...]}
OUT: {"items": [{"normalized": normalize(prediction), "exact_match": 0|1, "f1": x,
      "exact_string_match": 0|1}, ...], "exact_match": mean*100, "f1": mean*100,
      "exact_string_match": mean, "total": n}

The normalisation as formats.md §7.4 states it: str.lower(); every character of
string.punctuation deleted; re.sub(r"\b(a|an|the)\b", " ", s); " ".join(s.split()). F1 over the
multiset of normalized tokens (collections.Counter intersection), 0 when nothing is shared; every
metric takes its max over the answers (0 for none).
"""
import collections
import json
import re
import string
import sys

PUNCT = set(string.punctuation)
ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in PUNCT)
    s = ARTICLES.sub(" ", s)
    return " ".join(s.split())


def em(pred, ref):
    return 1.0 if normalize(pred) == normalize(ref) else 0.0


def f1(pred, ref):
    p, r = normalize(pred).split(), normalize(ref).split()
    shared = sum((collections.Counter(p) & collections.Counter(r)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(p), shared / len(r)
    return 2 * precision * recall / (precision + recall)


def esm(pred, ref):
    return 1.0 if pred == ref else 0.0


def best(metric, pred, refs):
    return max([metric(pred, r) for r in refs], default=0.0)


def main(inp, outp):
    with open(inp, encoding="utf-8") as f:
        items = json.load(f)["items"]
    rows = []
    for it in items:
        pred, refs = it["prediction"], it["answers"]
        rows.append({"normalized": normalize(pred), "exact_match": best(em, pred, refs), "f1": best(f1, pred, refs),
                     "exact_string_match": best(esm, pred, refs)})
    n = len(rows)
    out = {"items": rows, "total": n,
           "exact_match": 100.0 * sum(r["exact_match"] for r in rows) / n if n else 0.0,
           "f1": 100.0 * sum(r["f1"] for r in rows) / n if n else 0.0,
           "exact_string_match": sum(r["exact_string_match"] for r in rows) / n if n else 0.0}
    with open(outp, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
