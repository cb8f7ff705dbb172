"""Independent checks of .nemo archives with PyTorch, for tests/unit/export/nemo_test.cpp.

  nemo_reference.py check ARCHIVE.nemo TOKENS.safetensors OUT.safetensors
      Opens the archive with tarfile (uncompressed, as NeMo >= 1.7 writes it), reads
      model_config.yaml, checks the rank folders its TP/PP imply (formats.md §5.1), torch.load()s
      each rank's model_weights.ckpt, checks that the keys are exactly NeMo's GPT state-dict keys
      (layers numbered local to their pipeline stage, the last stage's model.word_embeddings.weight
      when PP > 1) with their per-rank shapes, reassembles the full tensors (column-parallel dim 0,
      row-parallel dim 1) and runs the Megatron GPT forward (float64) on TOKENS ("tokens" (B, T)).
      Writes "logits" (B, T, Vp) and every full tensor under its global name.
  nemo_reference.py tensors ARCHIVE.nemo OUT.safetensors
      Writes every rank's tensors as "<rank folder>/<key>" (round-trip comparisons).
  nemo_reference.py make-nemo STATE.safetensors CONFIG.json VOCAB.json OUT.nemo
      Writes an archive the way NeMo does: torch.save (real PyTorch pickles) of the state dict,
      gzip-compressed tar with "./" members, model_config.yaml, a uuid-prefixed vocab artifact.
  nemo_reference.py bad-pickle OUT.ckpt
      torch.save of a dict holding a non-tensor object (collections.Counter).
  nemo_reference.py check-t5 ARCHIVE.nemo BATCH.safetensors OUT.safetensors
      The same checks for a T5 / mT5 archive (target MegatronT5Model): the keys are exactly NeMo's
      T5 state-dict keys derived here from model_config.yaml (embeddings, relative position tables,
      encoder/decoder layers with cross-attention, final norms, tokens head), with their per-rank
      shapes (column-parallel dim 0, row-parallel dim 1, replicated tables equal on every rank);
      the reassembled tensors and BATCH (encoder_tokens, tokens, labels, loss_mask,
      encoder_lengths, decoder_lengths) go through t5_reference.py's forward; OUT gets its "logits".
"""
import collections
import io
import json
import math
import os
import sys
import tarfile
import uuid

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402


def fail(msg):
    print("nemo_reference: " + msg, file=sys.stderr)
    sys.exit(1)


def rank_folder(tp, pp, t, p):
    if tp == 1 and pp == 1:
        return "."
    if pp == 1:
        return f"mp_rank_{t:02d}"
    return f"tp_rank_{t:02d}_pp_rank_{p:03d}"


def read_archive(path):
    with tarfile.open(path, "r:") as tar:
        names = tar.getnames()
        members = {n: tar.extractfile(n).read() for n in names if tar.getmember(n).isfile()}
    return names, members


def expected_keys(cfg, pp, p):
    L = cfg["num_layers"]
    per = L // pp
    keys = []
    if p == 0:
        keys += ["model.language_model.embedding.word_embeddings.weight",
                 "model.language_model.embedding.position_embeddings.weight"]
    for i in range(per):
        lp = f"model.language_model.encoder.layers.{i}."
        keys += [lp + s for s in (
            "input_layernorm.weight", "input_layernorm.bias",
            "self_attention.query_key_value.weight", "self_attention.query_key_value.bias",
            "self_attention.dense.weight", "self_attention.dense.bias",
            "post_attention_layernorm.weight", "post_attention_layernorm.bias",
            "mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h.bias",
            "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias")]
    if p == pp - 1:
        keys += ["model.language_model.encoder.final_layernorm.weight",
                 "model.language_model.encoder.final_layernorm.bias"]
        if pp > 1:
            keys.append("model.word_embeddings.weight")
    return keys


def split_dim(key):
    if key.endswith("word_embeddings.weight") or "query_key_value" in key or "dense_h_to_4h" in key:
        return 0
    if key.endswith("self_attention.dense.weight") or key.endswith("dense_4h_to_h.weight"):
        return 1
    return None


def check(archive, tokens_file, out):
    names, members = read_archive(archive)
    if "./model_config.yaml" not in names:
        fail(f"no ./model_config.yaml in {names}")
    cfg = yaml.safe_load(members["./model_config.yaml"])
    if cfg.get("target") != "nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel":
        fail(f"target is {cfg.get('target')}")
    if "nemo_version" not in cfg:
        fail("no nemo_version")
    for k in ("vocab_file", "merge_file"):
        v = cfg["tokenizer"].get(k)
        if v is not None:
            if not v.startswith("nemo:") or len(v.split(":", 1)[1].split("_", 1)[0]) != 32:
                fail(f"tokenizer.{k} is {v}, not nemo:<32 hex>_<name>")
            if "./" + v[5:] not in members:
                fail(f"artifact {v} not in the archive")
    tp, pp = cfg["tensor_model_parallel_size"], cfg["pipeline_model_parallel_size"]
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    ffn = cfg["ffn_hidden_size"]
    folders = sorted({os.path.dirname(n) for n in names if n.endswith("model_weights.ckpt")})
    want = sorted({os.path.dirname(f"./{rank_folder(tp, pp, t, p)}/model_weights.ckpt".replace("/./", "/"))
                   for t in range(tp) for p in range(pp)})
    if folders != want:
        fail(f"rank folders {folders}, expected {want}")
    full = {}
    per = cfg["num_layers"] // pp
    for p in range(pp):
        shards = []
        for t in range(tp):
            f = f"./{rank_folder(tp, pp, t, p)}/model_weights.ckpt".replace("/./", "/")
            sd = torch.load(io.BytesIO(members[f]), map_location="cpu")
            if list(sd.keys()) != expected_keys(cfg, pp, p) and sorted(sd.keys()) != sorted(expected_keys(cfg, pp, p)):
                fail(f"{f}: keys {sorted(sd.keys())} != {sorted(expected_keys(cfg, pp, p))}")
            shards.append(sd)
        for key in shards[0]:
            d = split_dim(key)
            parts = [s[key] for s in shards]
            # per-rank shapes from the config
            shp = tuple(parts[0].shape)
            if "query_key_value.weight" in key and shp != (3 * h // tp, h):
                fail(f"{key} shape {shp}")
            if "dense_h_to_4h.weight" in key and shp != (ffn // tp, h):
                fail(f"{key} shape {shp}")
            if key.endswith("self_attention.dense.weight") and shp != (h, h // tp):
                fail(f"{key} shape {shp}")
            tensor = torch.cat(parts, dim=d) if d is not None else parts[0]
            if d is None:
                for q in parts[1:]:
                    if not torch.equal(q, parts[0]):
                        fail(f"replicated {key} differs between ranks")
            g = key
            if ".layers." in key:
                pre, rest = key.split(".layers.", 1)
                i, tail = rest.split(".", 1)
                g = f"{pre}.layers.{int(i) + p * per}.{tail}"
            full[g] = tensor.to(torch.float64)
    word = full["model.language_model.embedding.word_embeddings.weight"]
    if "model.word_embeddings.weight" in full and not torch.equal(full["model.word_embeddings.weight"], word):
        fail("last stage's word embedding copy differs")
    tokens = safetensors_io.load(tokens_file)[0]["tokens"].long()
    logits = forward(cfg, full, tokens)
    outs = {"logits": logits.to(torch.float32)}
    for k, v in full.items():
        outs[k] = v.to(torch.float32)
    safetensors_io.save(out, outs)


def forward(cfg, w, tokens):
    pre = "model.language_model."
    L, nh = cfg["num_layers"], cfg["num_attention_heads"]
    h = cfg["hidden_size"]
    hn = cfg.get("kv_channels") or h // nh
    eps = cfg.get("layernorm_epsilon", 1e-5)
    approx = "tanh" if cfg.get("activation") == "gelu_tanh" else "none"
    B, T = tokens.shape
    x = w[pre + "embedding.word_embeddings.weight"][tokens.t()] + w[pre + "embedding.position_embeddings.weight"][:T][:, None, :]
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(L):
        g = lambda n: w[f"{pre}encoder.layers.{l}.{n}"]  # noqa: E731
        y = F.layer_norm(x, (h,), g("input_layernorm.weight"), g("input_layernorm.bias"), eps)
        qkv = y @ g("self_attention.query_key_value.weight").t() + g("self_attention.query_key_value.bias")
        qkv = qkv.view(T, B, nh, 3 * hn)  # [local_head, (q,k,v), head_dim]
        q, k, v = torch.split(qkv, hn, dim=-1)
        q, k, v = (z.permute(1, 2, 0, 3) for z in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hn)
        s = s.masked_fill(causal, float("-inf"))
        ctx = torch.softmax(s, dim=-1) @ v  # [b, np, s, hn]
        ctx = ctx.permute(2, 0, 1, 3).reshape(T, B, nh * hn)
        x = x + ctx @ g("self_attention.dense.weight").t() + g("self_attention.dense.bias")
        y = F.layer_norm(x, (h,), g("post_attention_layernorm.weight"), g("post_attention_layernorm.bias"), eps)
        y = F.gelu(y @ g("mlp.dense_h_to_4h.weight").t() + g("mlp.dense_h_to_4h.bias"), approximate=approx)
        x = x + y @ g("mlp.dense_4h_to_h.weight").t() + g("mlp.dense_4h_to_h.bias")
    x = F.layer_norm(x, (h,), w[pre + "encoder.final_layernorm.weight"], w[pre + "encoder.final_layernorm.bias"], eps)
    return (x @ w[pre + "embedding.word_embeddings.weight"].t()).transpose(0, 1)  # (B, T, Vp)


def tensors(archive, out):
    names, members = read_archive(archive)
    outs = {}
    for n in names:
        if n.endswith("model_weights.ckpt"):
            sd = torch.load(io.BytesIO(members[n]), map_location="cpu")
            for k, v in sd.items():
                outs[os.path.dirname(n) + "/" + k] = v
    safetensors_io.save(out, outs)


def make_nemo(state_file, config_file, vocab_file, out):
    state, _ = safetensors_io.load(state_file)
    with open(config_file) as f:
        cfg = json.load(f)
    sd = collections.OrderedDict((k, state[k]) for k in state)
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    buf = io.BytesIO()
    torch.save(sd, buf)
    art = uuid.uuid4().hex + "_vocab.json"
    cfg["tokenizer"]["vocab_file"] = "nemo:" + art
    files = {"./model_config.yaml": yaml.safe_dump(cfg).encode(), "./model_weights.ckpt": buf.getvalue()}
    with open(vocab_file, "rb") as f:
        files["./" + art] = f.read()
    with tarfile.open(out, "w:gz") as tar:
        d = tarfile.TarInfo("./")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))


def bad_pickle(out):
    torch.save({"a": torch.zeros(2), "b": collections.Counter("ab")}, out)


def t5_expected(cfg, tp):
    """{key: per-rank shape} of NeMo's T5 state dict (PP 1) from model_config.yaml."""
    enc, dec = cfg["encoder"], cfg["decoder"]
    h = enc["hidden_size"]
    div = cfg["make_vocab_size_divisible_by"] * tp
    vp = (cfg["vocab_size"] + div - 1) // div * div
    P = "enc_dec_model."
    out = {P + "encoder_embedding.word_embeddings.weight": (vp // tp, h)}
    relative = enc["position_embedding_type"] == "relative"
    positions = cfg.get("max_position_embeddings") or cfg["encoder_seq_length"]
    if not relative:
        out[P + "encoder_embedding.position_embeddings.weight"] = (positions, h)
    if not cfg["share_token_embeddings"]:
        out[P + "decoder_embedding.word_embeddings.weight"] = (vp // tp, h)
        if not relative:
            out[P + "decoder_embedding.position_embeddings.weight"] = (positions, h)
    for name, s in (("encoder", enc), ("decoder", dec)):
        if relative:
            out[f"{P}{name}_relative_position_embedding.relative_position_embedding.weight"] = (
                s["relative_attention_num_buckets"], s["num_attention_heads"])
        hs = s["kv_channels"] or s["hidden_size"] // s["num_attention_heads"]
        proj, f = s["num_attention_heads"] * hs, s["ffn_hidden_size"]
        norm_bias = s["normalization"] == "layernorm"
        gated = s["activation"] in ("geglu", "reglu", "swiglu")

        def lin(prefix, shape, split):
            per = list(shape)
            per[split] //= tp
            out[prefix + ".weight"] = tuple(per)
            if s["bias"]:
                out[prefix + ".bias"] = (per[0],) if split == 0 else (shape[0],)

        def norm(prefix):
            out[prefix + ".weight"] = (h,)
            if norm_bias:
                out[prefix + ".bias"] = (h,)

        base = f"{P}enc_dec_model.{name}.model"
        for i in range(s["num_layers"]):
            L = f"{base}.layers.{i}."
            norm(L + "input_layernorm")
            lin(L + "self_attention.query_key_value", (3 * proj, h), 0)
            lin(L + "self_attention.dense", (h, proj), 1)
            norm(L + "post_attention_layernorm")
            if name == "decoder":
                lin(L + "inter_attention.query", (proj, h), 0)
                lin(L + "inter_attention.key_value", (2 * proj, h), 0)
                lin(L + "inter_attention.dense", (h, proj), 1)
                norm(L + "post_inter_attention_layernorm")
            lin(L + "mlp.dense_h_to_4h", (f, h), 0)
            if gated:
                lin(L + "mlp.dense_h_to_4h_2", (f, h), 0)
            lin(L + "mlp.dense_4h_to_h", (h, f), 1)
        norm(base + ".final_layernorm")
    if cfg["share_decoder_tokens_head_embeddings"]:
        if cfg["tokens_head_bias"]:
            out[P + "tokens_head.bias"] = (vp // tp,)
    else:
        out[P + "tokens_head.weight"] = (vp // tp, h)
    return out


def t5_split_dim(key, shape, full_shape):
    if shape == full_shape:
        return None
    return 0 if shape[0] != full_shape[0] else 1


def check_t5(archive, batch_file, out):
    import t5_reference  # noqa: E402  (tests/python, on sys.path)
    names, members = read_archive(archive)
    cfg = yaml.safe_load(members["./model_config.yaml"])
    if cfg.get("target") != "nemo.collections.nlp.models.language_modeling.megatron_t5_model.MegatronT5Model":
        fail(f"target is {cfg.get('target')}")
    tp, pp = cfg["tensor_model_parallel_size"], cfg["pipeline_model_parallel_size"]
    if pp != 1:
        fail("check-t5 covers PP 1")
    folders = sorted({os.path.dirname(n) for n in names if n.endswith("model_weights.ckpt")})
    want = sorted({os.path.dirname(f"./{rank_folder(tp, 1, t, 0)}/model_weights.ckpt".replace("/./", "/"))
                   for t in range(tp)})
    if folders != want:
        fail(f"rank folders {folders}, expected {want}")
    expected = t5_expected(cfg, tp)
    full_expected = t5_expected(cfg, 1)
    shards = []
    for t in range(tp):
        f = f"./{rank_folder(tp, 1, t, 0)}/model_weights.ckpt".replace("/./", "/")
        sd = torch.load(io.BytesIO(members[f]), map_location="cpu")
        if sorted(sd.keys()) != sorted(expected.keys()):
            fail(f"{f}: keys {sorted(set(sd) ^ set(expected))} differ from NeMo's T5 keys")
        for k, v in sd.items():
            if tuple(v.shape) != expected[k]:
                fail(f"{f}: {k} has shape {tuple(v.shape)}, expected {expected[k]}")
            if v.dtype != torch.float32:
                fail(f"{f}: {k} is {v.dtype}")
        shards.append(sd)
    full = {}
    for k in expected:
        parts = [s[k] for s in shards]
        d = t5_split_dim(k, expected[k], full_expected[k]) if tp > 1 else None
        if d is None:
            for q in parts[1:]:
                if not torch.equal(q, parts[0]):
                    fail(f"replicated {k} differs between ranks")
            full[k] = parts[0]
        elif "query_key_value" in k or "key_value" in k:
            full[k] = torch.cat(parts, dim=0)  # head-interleaved rows: rank r holds heads [r*np, (r+1)*np)
        else:
            full[k] = torch.cat(parts, dim=d)
    batch, _ = safetensors_io.load(batch_file)
    tmp = out + ".in.safetensors"
    tensors = dict(full)
    tensors.update(batch)
    safetensors_io.save(tmp, {k: v.contiguous() for k, v in tensors.items()}, {"config": json.dumps(cfg)})
    t5_reference.main(tmp, out + ".ref.safetensors")
    ref, _ = safetensors_io.load(out + ".ref.safetensors")
    safetensors_io.save(out, {"logits": ref["logits"].contiguous()})


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "check-t5":
        check_t5(*sys.argv[2:5])
        sys.exit(0)
    if cmd == "check":
        check(*sys.argv[2:5])
    elif cmd == "tensors":
        tensors(*sys.argv[2:4])
    elif cmd == "make-nemo":
        make_nemo(*sys.argv[2:6])
    elif cmd == "bad-pickle":
        bad_pickle(sys.argv[2])
    else:
        fail("unknown command " + cmd)
