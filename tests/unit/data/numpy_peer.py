#!/usr/bin/python3
"""Independent numpy implementation of the Megatron data formats, used as the test peer.

Written from the format description (docs/data.md, Megatron's documented algorithms), not from
bignlp's C++: it reads and writes MMIDIDX datasets with numpy, builds the GPT index maps with
numpy.random.RandomState, and blends with the greedy error-feedback rule. Output is JSON on stdout.
"""
import json
import math
import struct
import sys

import numpy as np

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}
CODES = {np.dtype(v).name: k for k, v in DTYPES.items()}


def read_dataset(prefix):
    with open(prefix + ".idx", "rb") as f:
        raw = f.read()
    assert raw[:9] == b"MMIDIDX\x00\x00", "bad magic"
    version, = struct.unpack("<Q", raw[9:17])
    assert version == 1
    code = raw[17]
    n, d = struct.unpack("<QQ", raw[18:34])
    sizes = np.frombuffer(raw, dtype=np.int32, count=n, offset=34)
    pointers = np.frombuffer(raw, dtype=np.int64, count=n, offset=34 + 4 * n)
    doc_idx = np.frombuffer(raw, dtype=np.int64, count=d, offset=34 + 12 * n)
    bin_data = np.memmap(prefix + ".bin", dtype=DTYPES[code], mode="r")
    item = np.dtype(DTYPES[code]).itemsize
    seqs = [bin_data[p // item: p // item + s] for p, s in zip(pointers, sizes)]
    return code, sizes, pointers, doc_idx, seqs


def write_dataset(prefix, dtype_name, docs):
    """docs: list of documents, each a list of sequences (lists of ids)."""
    dt = np.dtype(dtype_name)
    sizes, doc_idx = [], [0]
    with open(prefix + ".bin", "wb") as f:
        for doc in docs:
            for seq in doc:
                f.write(np.array(seq, dtype=dt).tobytes(order="C"))
                sizes.append(len(seq))
            doc_idx.append(len(sizes))
    pointers = np.zeros(len(sizes), dtype=np.int64)
    if sizes:
        pointers[1:] = np.cumsum(np.array(sizes[:-1], dtype=np.int64) * dt.itemsize)
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", CODES[dt.name]))
        f.write(struct.pack("<Q", len(sizes)))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(np.array(sizes, dtype=np.int32).tobytes(order="C"))
        f.write(pointers.tobytes(order="C"))
        f.write(np.array(doc_idx, dtype=np.int64).tobytes(order="C"))


def split_indices(splits_string, size):
    if "," in splits_string:
        parts = [float(s) for s in splits_string.split(",")]
    elif "/" in splits_string:
        parts = [float(s) for s in splits_string.split("/")]
    else:
        parts = [float(splits_string)]
    while len(parts) < 3:
        parts.append(0.0)
    total = sum(parts)
    parts = [p / total for p in parts]
    idx = [0]
    for k, p in enumerate(parts):
        idx.append(idx[k] + int(round(p * float(size))))
    diff = idx[-1] - size
    for k in range(1, len(idx)):
        idx[k] -= diff
    return idx


def index_maps(sizes, documents, num_samples, seq_length, seed, extra):
    tokens_per_epoch = int(np.sum(sizes[documents]))
    epochs, total = 0, 0
    while True:
        epochs += 1
        total += tokens_per_epoch
        if (total - extra) // seq_length >= num_samples:
            break
    rng = np.random.RandomState(seed=seed)
    if epochs == 1:
        separate = False
    else:
        from_prev = ((epochs - 1) * tokens_per_epoch - extra) // seq_length
        last = num_samples - from_prev
        per_epoch = (tokens_per_epoch - extra) // seq_length
        separate = last < int(0.80 * per_epoch)

    def doc_idx_for(e):
        a = np.mgrid[0:e, 0:len(documents)][1]
        a[:] = documents
        a = a.reshape(-1).astype(np.int32)
        rng.shuffle(a)
        return a

    if not separate:
        doc_idx = doc_idx_for(epochs)
    else:
        doc_idx = np.concatenate((doc_idx_for(epochs - 1), doc_idx_for(1)))
    n = (epochs * tokens_per_epoch - extra) // seq_length
    sample_idx = np.zeros((n + 1, 2), dtype=np.int32)
    d, off = 0, 0
    for s in range(1, n + 1):
        remaining = seq_length + extra
        while remaining != 0:
            length = int(sizes[doc_idx[d]]) - off
            remaining -= length
            if remaining <= 0:
                off += remaining + length - extra
                remaining = 0
            else:
                d += 1
                off = 0
        sample_idx[s] = (d, off)
    dtype = np.uint32 if n < np.iinfo(np.uint32).max - 1 else np.int64
    first = from_prev if separate else n
    a = np.arange(0, first, dtype=dtype)
    rng.shuffle(a)
    if first != n:
        b = np.arange(first, n, dtype=dtype)
        rng.shuffle(b)
        a = np.concatenate((a, b))
    return doc_idx, sample_idx, a, epochs, separate


def sample(seqs, doc_idx, sample_idx, shuffle_idx, i, extra):
    j = shuffle_idx[i]
    d0, o0 = sample_idx[j]
    d1, o1 = sample_idx[j + 1]
    if d0 == d1:
        return seqs[doc_idx[d0]][o0:o1 + extra]
    parts = [seqs[doc_idx[d0]][o0:]]
    for k in range(d0 + 1, d1):
        parts.append(seqs[doc_idx[k]])
    parts.append(seqs[doc_idx[d1]][:o1 + extra])
    return np.concatenate(parts)


def blend(weights, size):
    w = np.array(weights, dtype=np.float64)
    w /= np.sum(w)
    counts = [0] * len(w)
    di, dsi = [], []
    for i in range(size):
        x = max(float(i), 1.0)
        errs = [w[k] * x - counts[k] for k in range(len(w))]
        k = int(np.argmax(errs))
        di.append(k)
        dsi.append(counts[k])
        counts[k] += 1
    return di, dsi


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "read-dataset":
        code, sizes, pointers, doc_idx, seqs = read_dataset(args[0])
        print(json.dumps({"dtype": int(code), "sizes": sizes.tolist(), "pointers": pointers.tolist(),
                          "doc_idx": doc_idx.tolist(), "seqs": [s.tolist() for s in seqs]}))
    elif cmd == "write-dataset":
        write_dataset(args[0], args[1], json.loads(args[2]))
    elif cmd == "split":
        # split JSON_LIST_OF_[string, size]
        print(json.dumps([split_indices(s, n) for s, n in json.loads(args[0])]))
    elif cmd == "gpt":
        # gpt PREFIX SPLITS NAME NUM_SAMPLES SEQ_LENGTH SEED EXTRA CACHE: maps, every sample, and the
        # cache files CACHE_{doc,sample,shuffle}_idx.npy as numpy loads them
        prefix, splits, name = args[0], args[1], args[2]
        num_samples, seq_length, seed, extra = (int(a) for a in args[3:7])
        cache = {}
        for kind in ("doc", "sample", "shuffle"):
            a = np.load(args[7] + "_%s_idx.npy" % kind)
            cache[kind] = {"descr": a.dtype.str, "shape": list(a.shape), "values": a.reshape(-1).tolist()}
        _, sizes, _, _, seqs = read_dataset(prefix)
        bounds = split_indices(splits, len(sizes))
        k = {"train": 0, "valid": 1, "test": 2}[name]
        documents = np.arange(bounds[k], bounds[k + 1], dtype=np.int32)
        doc_idx, sample_idx, shuffle_idx, epochs, separate = index_maps(sizes, documents, num_samples, seq_length,
                                                                        seed, extra)
        samples = [sample(seqs, doc_idx, sample_idx, shuffle_idx, i, extra).tolist() for i in range(len(shuffle_idx))]
        print(json.dumps({"doc_idx": doc_idx.tolist(), "sample_idx": sample_idx.reshape(-1).tolist(),
                          "shuffle_idx": shuffle_idx.tolist(), "shuffle_dtype": shuffle_idx.dtype.str,
                          "epochs": epochs, "separate": bool(separate), "samples": samples, "cache": cache}))
    elif cmd == "load-npy":
        a = np.load(args[0])
        print(json.dumps({"descr": a.dtype.str, "shape": list(a.shape), "values": a.reshape(-1).tolist()}))
    elif cmd == "save-npy":
        # save-npy PATH DTYPE ROWS COLS JSON_VALUES (COLS 0: 1-D)
        rows, cols = int(args[2]), int(args[3])
        a = np.array(json.loads(args[4]), dtype=args[1])
        if cols:
            a = a.reshape(rows, cols)
        np.save(args[0], a)
    elif cmd == "random":
        # random SEED: a fixed battery of RandomState draws
        seed = int(args[0])
        out = {}
        rng = np.random.RandomState(seed)
        out["uint32"] = [int(v) for v in rng.randint(0, 2**32, size=5, dtype=np.uint64)]
        for n in (1, 2, 3, 10, 100, 1000, 65537):
            rng = np.random.RandomState(seed)
            a = np.arange(n, dtype=np.int64)
            rng.shuffle(a)
            out["shuffle_%d" % n] = a.tolist()
        rng = np.random.RandomState(seed)
        lst = list(range(20))
        rng.shuffle(lst)
        out["shuffle_list"] = lst
        rng = np.random.RandomState(seed)
        out["random_sample"] = [repr(v) for v in rng.random_sample(5)]
        rng = np.random.RandomState(seed)
        out["geometric_0.2"] = [int(v) for v in rng.geometric(0.2, size=50)]
        rng = np.random.RandomState(seed)
        out["geometric_0.5"] = [int(v) for v in rng.geometric(0.5, size=50)]
        rng = np.random.RandomState(seed)
        out["interval_big"] = [int(rng.randint(0, 2**40 + 1, dtype=np.int64)) for _ in range(5)]
        print(json.dumps(out))
    elif cmd == "blend":
        weights = [float(w) for w in args[0].split(",")]
        di, dsi = blend(weights, int(args[1]))
        print(json.dumps({"dataset_index": di, "dataset_sample_index": dsi}))
    elif cmd == "sum":
        rng = np.random.RandomState(int(args[0]))
        out = []
        for n in (1, 2, 7, 8, 9, 30, 127, 128, 129, 300, 1000):
            a = rng.random_sample(n) * 10.0 ** rng.randint(-3, 4)
            out.append({"values": [repr(v) for v in a], "sum": repr(np.sum(a))})
        print(json.dumps(out))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
