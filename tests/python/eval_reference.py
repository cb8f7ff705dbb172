"""Independent reference of the zero-shot task suite, for tests/unit/eval/tasks_test.cpp.

Usage: eval_reference.py CHECKPOINT DATA_DIR VOCAB_JSON MERGES_TXT STYLE TASKS OUT.json
Reads a one-shard bignlp checkpoint (metadata.json + tp_rank_00_pp_rank_000/model.safetensors),
the task files under DATA_DIR in their published formats, and the GPT-2 BPE files; computes every
metric of every task (comma list) in STYLE ("launcher" or "lm-eval") the way formats.md §7 and
lm-evaluation-harness v0.3.0 describe them, with a float64 PyTorch forward pass (pre-LN GPT,
learned positions, tied output layer; the softmax over the padded vocabulary as the model has it,
the greedy token over the real one), one request at a time (no batching), and writes
{"results": {task: {metric: value}}}. Nothing here is shared with the C++ code.
"""
import glob
import json
import math
import os
import random
import re
import sys

import regex
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402


# ---------------------------------------------------------------- GPT-2 byte-level BPE
def byte_unicode_table():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Bpe:
    PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

    def __init__(self, vocab_path, merges_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(merges_path, encoding="utf-8") as f:
            lines = [l for l in f.read().split("\n") if l and not l.startswith("#version")]
        self.rank = {tuple(l.split(" ")): i for i, l in enumerate(lines)}
        self.table = byte_unicode_table()
        self.eot = self.vocab["<|endoftext|>"]

    def word(self, piece):
        parts = [self.table[b] for b in piece.encode("utf-8")]
        while len(parts) > 1:
            pairs = [(self.rank.get((parts[i], parts[i + 1]), None), i) for i in range(len(parts) - 1)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                break
            best = min(pairs)[0]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and self.rank.get((parts[i], parts[i + 1])) == best:
                    out.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return [self.vocab[p] for p in parts]

    def encode(self, text):
        ids = []
        for piece in self.PATTERN.findall(text):
            ids += self.word(piece)
        return ids


# ---------------------------------------------------------------- the model, float64
class Gpt:
    def __init__(self, ckpt):
        with open(os.path.join(ckpt, "metadata.json")) as f:
            meta = json.load(f)
        self.cfg = meta["model"]
        t, _ = safetensors_io.load(os.path.join(ckpt, "tp_rank_00_pp_rank_000", "model.safetensors"))
        self.w = {k: v.to(torch.float64) for k, v in t.items()}
        self.vocab = self.cfg["vocab_size"]
        self.positions = self.cfg.get("max_position_embeddings") or self.cfg["encoder_seq_length"]

    def logprobs(self, tokens):
        """log-softmax (T, Vp) and argmax over the real vocabulary (T) of one sequence."""
        c, p = self.cfg, "model.language_model."
        g = lambda n: self.w[p + n]  # noqa: E731
        L, nh, C = c["num_layers"], c["num_attention_heads"], c["hidden_size"]
        hn = c.get("kv_channels") or C // nh
        eps = c["layernorm_epsilon"]
        approx = "tanh" if c.get("activation", "gelu_tanh") == "gelu_tanh" else "none"
        T = len(tokens)
        ids = torch.tensor(tokens)
        x = g("embedding.word_embeddings.weight")[ids] + g("embedding.position_embeddings.weight")[:T]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        for l in range(L):
            q = f"encoder.layers.{l}."
            h = F.layer_norm(x, (C,), g(q + "input_layernorm.weight"), g(q + "input_layernorm.bias"), eps)
            qkv = (h @ g(q + "self_attention.query_key_value.weight").t() + g(q + "self_attention.query_key_value.bias"))
            qkv = qkv.view(T, nh, 3 * hn)
            qh, kh, vh = (z.permute(1, 0, 2) for z in torch.split(qkv, hn, dim=-1))
            s = (qh @ kh.transpose(-1, -2)) / math.sqrt(hn)
            s = s.masked_fill(causal, float("-inf"))
            ctx = (torch.softmax(s, dim=-1) @ vh).permute(1, 0, 2).reshape(T, nh * hn)
            x = x + ctx @ g(q + "self_attention.dense.weight").t() + g(q + "self_attention.dense.bias")
            h = F.layer_norm(x, (C,), g(q + "post_attention_layernorm.weight"), g(q + "post_attention_layernorm.bias"), eps)
            a = F.gelu(h @ g(q + "mlp.dense_h_to_4h.weight").t() + g(q + "mlp.dense_h_to_4h.bias"), approximate=approx)
            x = x + a @ g(q + "mlp.dense_4h_to_h.weight").t() + g(q + "mlp.dense_4h_to_h.bias")
        x = F.layer_norm(x, (C,), g("encoder.final_layernorm.weight"), g("encoder.final_layernorm.bias"), eps)
        logits = x @ g("embedding.word_embeddings.weight").t()
        return torch.log_softmax(logits, dim=-1), logits[:, : self.vocab].argmax(dim=-1)

    def loglikelihood(self, context, continuation):
        """lm-eval's _loglikelihood_tokens for one request: (sum log p, is_greedy)."""
        whole = (context + continuation)[-(self.positions + 1):]
        inp, tgt = whole[:-1], whole[1:]
        lp, am = self.logprobs(inp)
        n = len(continuation)
        total, greedy = 0.0, True
        for k in range(len(inp) - n, len(inp)):
            total += lp[k, tgt[k]].item()
            greedy = greedy and am[k].item() == tgt[k]
        return total, greedy


# ---------------------------------------------------------------- tasks
def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def lambada_docs(d, style):
    docs = []
    for row in read_jsonl(os.path.join(d, "lambada_test.jsonl")):
        text = row["text"]
        if style == "launcher":
            text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
            head, last = text.rsplit(" ", 1)
            docs.append({"reqs": [("\n" + head.strip(), " " + last)]})
        else:
            head, last = text.rsplit(" ", 1)
            docs.append({"reqs": [(head, " " + last)]})
    return docs


def mc(ctx, choices, gold):
    return {"reqs": [(ctx, " " + c) for c in choices], "choices": choices, "gold": gold}


def boolq_docs(d, style):
    out = []
    for row in read_jsonl(os.path.join(d, "BoolQ", "val.jsonl")):
        q = row["question"] + ("?" if style == "lm-eval" else "")
        out.append(mc(f"{row['passage']}\nQuestion: {q}\nAnswer:", ["yes", "no"], 1 if row["label"] else 0))
    return out


def piqa_docs(d, style):
    rows = read_jsonl(os.path.join(d, "piqa", "valid.jsonl"))
    with open(os.path.join(d, "piqa", "valid-labels.lst")) as f:
        labels = [int(l) for l in f.read().split()]
    out = []
    for row, lab in zip(rows, labels):
        ctx = row["goal"] if style == "launcher" else "Question: " + row["goal"] + "\nAnswer:"
        out.append(mc(ctx, [row["sol1"], row["sol2"]], lab))
    return out


def hs_clean(s):
    s = s.strip().replace(" [title]", ". ")
    s = re.sub(r"\[.*?\]", "", s)
    return s.replace("  ", " ")


def hellaswag_docs(d, style):
    out = []
    for row in read_jsonl(os.path.join(d, "hellaswag_val.jsonl")):
        ctx = hs_clean(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
        out.append(mc(ctx, [hs_clean(e) for e in row["endings"]], int(row["label"])))
    return out


def winogrande_docs(d, style):
    out = []
    for row in read_jsonl(os.path.join(d, "winogrande_1.1", "dev.jsonl")):
        s = row["sentence"]
        k = s.index("_")
        cont = " " + s[k + 1:].strip()
        out.append({"reqs": [(s[:k] + row["option1"], cont), (s[:k] + row["option2"], cont)],
                    "gold": int(row["answer"]) - 1})
    return out


def race_docs(d, style):
    by_article, order = {}, []
    for path in sorted(glob.glob(os.path.join(d, "RACE", "test", "high", "*"))):
        with open(path, encoding="utf-8") as f:
            a = json.load(f)
        if a["article"] not in by_article:
            by_article[a["article"]] = []
            order.append(a["article"])
        for q, opts, ans in zip(a["questions"], a["options"], a["answers"]):
            by_article[a["article"]].append((q, opts, "ABCD".index(ans)))
    out = []
    for art in order:
        probs = by_article[art]
        text = "Article: " + art + "\n\n"
        for q, opts, ans in probs[:-1]:
            text += "Question: " + q + "\nAnswer: " + opts[ans] + "\n"
        q, opts, ans = probs[-1]
        text += "Question: " + q + "\nAnswer:"
        doc = mc(text, opts, ans)
        if style == "launcher":
            doc["uncond"] = [("Answer:", " " + o) for o in opts]
        out.append(doc)
    return out


def detok(s):
    s = s.replace("s '", "s'")
    s = re.sub(r"/' [0-9]/", r"/'[0-9]/", s)
    for a, b in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
                 (" ! ", "! "), (" ? ", "? "), (" , ", ", ")):
        s = s.replace(a, b)
    s = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", s)
    s = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", s)
    s = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", s)
    s = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', s)
    s = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", s)
    for a, b in (("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u00b0 ", "\u00b0"), (" \n", "\n"),
                 ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")):
        s = s.replace(a, b)
    return s


def wikitext_docs(d, rel):
    with open(os.path.join(d, rel), encoding="utf-8") as f:
        lines = f.read().split("\n")
    pages, cur = [], []
    for line in lines:
        r = line.replace("= = =", "===").replace("= =", "==").strip()
        if r.startswith("= ") and r.strip().endswith(" ="):
            page = "\n".join(cur)
            if page.strip():
                pages.append(page)
            cur = []
        cur.append(line)
    pages.append("\n".join(cur))
    return [{"page": p} for p in pages]


# ---------------------------------------------------------------- metrics
def mean(xs):
    return sum(xs) / len(xs)


def stddev(xs):
    mu = mean(xs)
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))


def mean_stderr(xs):
    return stddev(xs) / math.sqrt(len(xs))


def bootstrap_ppl_stderr(xs, iters=100000):
    chunk = min(1000, iters)
    res = []
    for i in range(iters // chunk):
        rnd = random.Random()
        rnd.seed(i)
        for _ in range(chunk):
            res.append(math.exp(-mean(rnd.choices(xs, k=len(xs)))))
    return stddev(res)


def first_argmax(v):
    best = 0
    for i in range(1, len(v)):
        if v[i] > v[best]:
            best = i
    return best


def run_task(name, data, style, model, bpe):
    def ll(ctx, cont):
        c = bpe.encode(ctx) if ctx else [bpe.eot]
        t = bpe.encode(cont)
        lp, g = model.loglikelihood(c, t)
        return lp, g, len(t)

    if name in ("wikitext2", "wikitext103"):
        rel = "wikitext-2-raw/wiki.test.raw" if name == "wikitext2" else "wikitext-103-raw/wiki.test.raw"
        total, words, nbytes = 0.0, 0, 0
        L = model.positions
        for doc in wikitext_docs(data, rel):
            toks = bpe.encode(detok(doc["page"]))
            words += len(re.split(r"\s+", doc["page"]))
            nbytes += len(doc["page"].encode("utf-8"))
            done = 0
            while done < len(toks):  # windows written from the description, not lm-eval's code
                n = min(L, len(toks) - done)
                end = done + n
                if done == 0:
                    inp = [bpe.eot] + toks[: n - 1]
                else:
                    inp = toks[end - L - 1: end - 1]
                ctx = inp[: len(inp) - (n - 1)]
                total += model.loglikelihood(ctx, toks[done:end])[0]
                done = end
        bpb = -total / nbytes / (math.log(2) if style == "lm-eval" else 1.0)
        return {"word_perplexity": math.exp(-total / words), "byte_perplexity": math.exp(-total / nbytes),
                "bits_per_byte": bpb}
    loaders = {"lambada": lambada_docs, "boolq": boolq_docs, "piqa": piqa_docs, "hellaswag": hellaswag_docs,
               "winogrande": winogrande_docs, "race": race_docs}
    docs = loaders[name](data, style)
    if name == "lambada":
        lls, accs = [], []
        for doc in docs:
            lp, g, _ = ll(*doc["reqs"][0])
            lls.append(lp)
            accs.append(1.0 if g else 0.0)
        return {"ppl": math.exp(-mean(lls)), "ppl_stderr": bootstrap_ppl_stderr(lls), "acc": mean(accs),
                "acc_stderr": mean_stderr(accs)}
    acc, acc_norm = [], []
    for doc in docs:
        res = [ll(c, t) for c, t in doc["reqs"]]
        lls = [r[0] for r in res]
        if name == "boolq":
            acc.append(1.0 if (lls[0] > lls[1]) == (doc["gold"] == 1) else 0.0)
            continue
        acc.append(1.0 if first_argmax(lls) == doc["gold"] else 0.0)
        if name in ("piqa", "hellaswag"):
            if style == "launcher":
                norm = [r[0] / r[2] for r in res]
            else:
                norm = [r[0] / len(c) for r, c in zip(res, doc["choices"])]
            acc_norm.append(1.0 if first_argmax(norm) == doc["gold"] else 0.0)
        elif name == "race" and style == "launcher":
            un = [ll(c, t)[0] for c, t in doc["uncond"]]
            acc_norm.append(1.0 if first_argmax([a - b for a, b in zip(lls, un)]) == doc["gold"] else 0.0)
    out = {"acc": mean(acc), "acc_stderr": mean_stderr(acc)}
    if acc_norm:
        out.update({"acc_norm": mean(acc_norm), "acc_norm_stderr": mean_stderr(acc_norm)})
    return out


def main(ckpt, data, vocab, merges, style, tasks, outp):
    torch.set_grad_enabled(False)
    model = Gpt(ckpt)
    bpe = Bpe(vocab, merges)
    results = {t: run_task(t, data, style, model, bpe) for t in tasks.split(",")}
    with open(outp, "w") as f:
        json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:8])
