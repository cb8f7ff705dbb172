"""Independent check of a FasterTransformer GPT export, for tests/unit/export/ft_test.cpp.

  ft_reference.py WEIGHTS_DIR SOURCE.safetensors T DTYPE FUSED

WEIGHTS_DIR is <repo>/<name>/1/<T>-gpu; SOURCE holds the full (unsharded) NeMo tensors under their
global names and the config as JSON metadata "config". Every file is read back with numpy
(np.fromfile, no header, DTYPE fp32|fp16), reshaped as formats.md §6.2 says, re-assembled over the
T ranks and compared with the source tensor (exact for fp32, the source rounded to fp16 for fp16).
Also checks config.ini against the config and that configparser writes it back byte for byte, and
that no file is missing or unexpected. Exit status 0 when everything holds.
"""
import configparser
import io
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402


def fail(msg):
    print("ft_reference: " + msg, file=sys.stderr)
    sys.exit(1)


def main(wdir, source, T, dtype, fused):
    T = int(T)
    fused = fused == "1"
    np_dt = np.float32 if dtype == "fp32" else np.float16
    src, meta = safetensors_io.load(source)
    cfg = json.loads(meta["config"])
    L, nh, h, f = cfg["num_layers"], cfg["num_attention_heads"], cfg["hidden_size"], cfg["ffn_hidden_size"]
    kv = cfg.get("kv_channels") or h // nh
    ha = nh * kv
    seen = set()

    def load(name, shape):
        path = os.path.join(wdir, name)
        if not os.path.exists(path):
            fail(f"missing {name}")
        a = np.fromfile(path, dtype=np_dt)
        if a.size != int(np.prod(shape)):
            fail(f"{name}: {a.size} elements, expected shape {shape}")
        seen.add(name)
        return a.reshape(shape).astype(np.float64)

    def same(name, got, want):
        want = want.numpy().astype(np_dt).astype(np.float64)
        if got.shape != want.shape:
            fail(f"{name}: reassembled shape {got.shape} != {want.shape}")
        if not np.array_equal(got, want):
            fail(f"{name}: values differ (max {np.abs(got - want).max()})")

    pre = "model.language_model."
    V = src[pre + "embedding.word_embeddings.weight"].shape[0]
    same("wte", load("model.wte.bin", (V, h)), src[pre + "embedding.word_embeddings.weight"])
    same("wpe", load("model.wpe.bin", tuple(src[pre + "embedding.position_embeddings.weight"].shape)),
         src[pre + "embedding.position_embeddings.weight"])
    for n in ("weight", "bias"):
        same("final ln", load(f"model.final_layernorm.{n}.bin", (h,)), src[pre + f"encoder.final_layernorm.{n}"])
    for l in range(L):
        s = lambda n: src[f"{pre}encoder.layers.{l}.{n}"]  # noqa: E731
        o = f"model.layers.{l}."
        for n in ("input_layernorm.weight", "input_layernorm.bias", "post_attention_layernorm.weight",
                  "post_attention_layernorm.bias"):
            same(o + n, load(o + n + ".bin", (h,)), s(n))
        same("dense bias", load(o + "attention.dense.bias.bin", (h,)), s("self_attention.dense.bias"))
        same("4h_to_h bias", load(o + "mlp.dense_4h_to_h.bias.bin", (h,)), s("mlp.dense_4h_to_h.bias"))
        # QKV: files [h, 3, ha/T] (fused) or [3, h, ha/T]; [3, ha/T] bias. Concatenate the ranks on the
        # last axis -> [h, 3, nh, kv] -> NeMo's [nh, 3, kv] output order, transposed back to [3ha, h].
        ws, bs = [], []
        for r in range(T):
            w = load(o + f"attention.query_key_value.weight.{r}.bin", (h, 3, ha // T) if fused else (3, h, ha // T))
            if not fused:
                w = w.transpose(1, 0, 2)
            ws.append(w)
            bs.append(load(o + f"attention.query_key_value.bias.{r}.bin", (3, ha // T)))
        w = np.concatenate(ws, axis=2).reshape(h, 3, nh, kv).transpose(0, 2, 1, 3).reshape(h, 3 * ha).T
        b = np.concatenate(bs, axis=1).reshape(3, nh, kv).transpose(1, 0, 2).reshape(3 * ha)
        same(o + "qkv weight", w, s("self_attention.query_key_value.weight"))
        same(o + "qkv bias", b, s("self_attention.query_key_value.bias"))
        d = np.concatenate([load(o + f"attention.dense.weight.{r}.bin", (ha // T, h)) for r in range(T)], axis=0)
        same(o + "dense", d.T, s("self_attention.dense.weight"))
        w = np.concatenate([load(o + f"mlp.dense_h_to_4h.weight.{r}.bin", (h, f // T)) for r in range(T)], axis=1)
        same(o + "h_to_4h", w.T, s("mlp.dense_h_to_4h.weight"))
        b = np.concatenate([load(o + f"mlp.dense_h_to_4h.bias.{r}.bin", (f // T,)) for r in range(T)])
        same(o + "h_to_4h bias", b, s("mlp.dense_h_to_4h.bias"))
        w = np.concatenate([load(o + f"mlp.dense_4h_to_h.weight.{r}.bin", (f // T, h)) for r in range(T)], axis=0)
        same(o + "4h_to_h", w.T, s("mlp.dense_4h_to_h.weight"))
    # config.ini
    text = open(os.path.join(wdir, "config.ini")).read()
    cp = configparser.ConfigParser()
    cp.read_string(text)
    g = cp["gpt"]
    want = {"model_name": "gpt", "tensor_para_size": str(T), "head_num": str(nh), "size_per_head": str(kv),
            "inter_size": str(f), "num_layer": str(L), "max_pos_seq_len": str(cfg["max_position_embeddings"]),
            "weight_data_type": dtype, "vocab_size": str(V)}
    for k, v in want.items():
        if g.get(k) != v:
            fail(f"config.ini {k} = {g.get(k)}, expected {v}")
    buf = io.StringIO()
    cp.write(buf)
    if buf.getvalue() != text:
        fail("config.ini is not what configparser writes:\n" + text + "---\n" + buf.getvalue())
    files = set(os.listdir(wdir)) - {"config.ini", "vocab.json", "merges.txt", "tokenizer.model"}
    if files != seen:
        fail(f"unexpected files {sorted(files - seen)}")


if __name__ == "__main__":
    main(*sys.argv[1:6])
