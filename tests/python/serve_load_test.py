"""A bounded localhost load test of bignlp-serve: every answer under load equals its single-request result.

Usage: serve_load_test.py BASE_URL MODEL N_REQUESTS CONCURRENCY
Builds N distinct requests (OpenAI /v1/completions with greedy, top-k/top-p sampling with seeds,
penalties, stop strings, n = 2; and KServe v2 infer with ragged batches), sends each alone and in
order, then all of them at once from CONCURRENCY threads, and compares the answers (ids and
timestamps removed; token ids and texts exactly, log-probabilities within 1e-4). Prints a JSON summary; exits 1 on any difference or non-200 answer.
"""
import concurrent.futures
import json
import sys
import urllib.error
import urllib.request


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def strip(answer):
    a = dict(answer)
    for k in ("id", "created"):
        a.pop(k, None)
    return a


def same(a, b):
    """Equal JSON, numbers within 1e-4 relative (a batch may round a GEMM differently; tokens may not differ)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-4 * max(1.0, abs(a))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def requests_for(base, model, n):
    words = ["alpha", "The weather", "Once upon a time", "In 1999,", "Numbers: 1, 2,", "Hello", "def f(x):", "Q: why?"]
    out = []
    for i in range(n):
        kind = i % 6
        prompt = f"{words[i % len(words)]} {i}"
        if kind == 0:
            out.append((f"{base}/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 8 + i % 9, "temperature": 0}))
        elif kind == 1:
            out.append((f"{base}/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 10, "temperature": 0.9,
                                                   "top_p": 0.8, "seed": i}))
        elif kind == 2:
            out.append((f"{base}/v1/completions", {"model": model, "prompt": [prompt, prompt + "!"], "max_tokens": 6,
                                                   "top_k": 20, "seed": 1000 + i, "n": 2, "logprobs": 2}))
        elif kind == 3:
            out.append((f"{base}/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 12, "temperature": 1.2,
                                                   "presence_penalty": 0.5, "stop": ["e"], "seed": i}))
        elif kind == 4:
            out.append((f"{base}/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": prompt}],
                                                        "max_tokens": 7, "seed": i, "repetition_penalty": 1.3}))
        else:
            ids = [[(i * 7 + j * 13) % 50000 for j in range(5)], [(i * 3 + 1) % 50000, 0, 0, 0, 0]]
            out.append((f"{base}/v2/models/{model}/infer", {"inputs": [
                {"name": "input_ids", "shape": [2, 5], "datatype": "UINT32", "data": ids},
                {"name": "input_lengths", "shape": [2, 1], "datatype": "UINT32", "data": [[5], [1]]},
                {"name": "request_output_len", "shape": [2, 1], "datatype": "UINT32", "data": [[6], [9]]},
                {"name": "runtime_top_k", "shape": [2, 1], "datatype": "UINT32", "data": [[0], [4]]},
                {"name": "random_seed", "shape": [2, 1], "datatype": "UINT64", "data": [[i], [i + 1]]},
                {"name": "is_return_log_probs", "shape": [2, 1], "datatype": "BOOL", "data": [[True], [True]]}]}))
    return out


def main(base, model, n, concurrency):
    reqs = requests_for(base, model, n)
    single = [post(u, b) for u, b in reqs]
    bad = [i for i, (s, _) in enumerate(single) if s != 200]
    with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
        together = list(ex.map(lambda r: post(*r), reqs))
    bad += [i for i, (s, _) in enumerate(together) if s != 200]
    diff = [i for i in range(n) if not same(strip(single[i][1]), strip(together[i][1]))]
    print(json.dumps({"requests": n, "concurrency": concurrency, "non_200": bad[:10], "different": diff[:10]}))
    if bad or diff:
        for i in (bad + diff)[:2]:
            print("single:", json.dumps(single[i][1])[:600], "\ntogether:", json.dumps(together[i][1])[:600], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
