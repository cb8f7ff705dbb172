"""PyTorch reference of NeMo's Megatron T5 (MegatronT5Model), for tests/unit/model/t5_model_test.cpp.

Usage: t5_reference.py IN.safetensors OUT.safetensors
IN holds the weights under NeMo's state-dict names, the batch (encoder_tokens (B, Te), tokens,
labels, loss_mask (B, Td), encoder_lengths, decoder_lengths (B)) and the model config as JSON
metadata "config" (NeMo's model.* keys with encoder/decoder sections). OUT receives logits
(B, Td, Vp), loss, and the gradient of every weight under its own name.

Written from the NeMo T5 definitions (megatron-model.md §8), in float64, independently of
bignlp's kernels: pre-LN layers; encoder self-attention with the padding mask, decoder self-
attention causal x decoder padding, cross-attention decoder padding (query) x encoder padding
(key), masks filled with -10000 as Megatron does; head-interleaved fused QKV [np, 3, hn] and
cross-attention key_value [np, 2, hn]; scores / sqrt(hn) (1 when normalize_attention_scores is
False); T5 relative position buckets (bidirectional for the encoder, unidirectional for the
decoder) computed once per stack and added in every layer, times the layer number under
apply_query_key_layer_scaling; GeGLU = gelu(x W1 + b1) * (x W2 + b2); tied head with the
tokens_head bias or an untied tokens_head weight.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402


def relative_bucket(rel, bidirectional, num_buckets, max_distance):
    """T5's bucket of relative position rel = key - query (tensor of int64)."""
    ret = torch.zeros_like(rel)
    n = num_buckets
    if bidirectional:
        n //= 2
        ret = ret + (rel > 0).long() * n
        rel = rel.abs()
    else:
        rel = torch.clamp(-rel, min=0)
    max_exact = n // 2
    is_small = rel < max_exact
    large = max_exact + (
        torch.log(rel.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact) * (n - max_exact)
    ).long()
    large = torch.clamp(large, max=n - 1)
    return ret + torch.where(is_small, rel, large)


def model_logits(params, cfg, enc_tokens, dec_tokens, enc_len, dec_len):
    """Logits (Td, B, Vp) of the model with weights `params` (NeMo names) for encoder_tokens (B, Te)
    and decoder tokens (B, Td) with their valid lengths (B)."""
    B, Te = enc_tokens.shape
    Td = dec_tokens.shape[1]
    relative = cfg["encoder"]["position_embedding_type"] == "relative"

    def norm(x, name, st):
        w = params[name + ".weight"]
        eps = st["layernorm_epsilon"]
        if st["normalization"] == "rmsnorm":
            return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w
        return F.layer_norm(x, (x.shape[-1],), w, params[name + ".bias"], eps)

    def linear(x, name):
        y = x @ params[name + ".weight"].t()
        b = params.get(name + ".bias")
        return y + b if b is not None else y

    def activation(st):
        a = st["activation"]
        tanh = st["bias_activation_fusion"] or st["openai_gelu"]
        gelu = (lambda z: F.gelu(z, approximate="tanh")) if tanh else F.gelu
        table = {"gelu": (gelu, False), "geglu": (gelu, True), "relu": (F.relu, False), "reglu": (F.relu, True),
                 "swish": (F.silu, False), "silu": (F.silu, False), "swiglu": (F.silu, True)}
        return table[a]

    def attention(q, k, v, keep, bias, st, nh, hn):
        # q [sq, b, np*hn], k/v [sk, b, np*hn] -> [sq, b, np*hn]; keep [b, sq, sk] bool
        sq, sk = q.shape[0], k.shape[0]
        q = q.view(sq, B, nh, hn).permute(1, 2, 0, 3)
        k = k.view(sk, B, nh, hn).permute(1, 2, 0, 3)
        v = v.view(sk, B, nh, hn).permute(1, 2, 0, 3)
        scale = 1.0 / math.sqrt(hn) if st["normalize_attention_scores"] else 1.0
        scores = (q @ k.transpose(-1, -2)) * scale
        if bias is not None:
            scores = scores + bias[None]
        scores = scores.masked_fill(~keep[:, None], -10000.0)
        probs = torch.softmax(scores, dim=-1)
        return (probs @ v).permute(2, 0, 1, 3).reshape(sq, B, nh * hn)

    def position_bias(name, st, sq, sk, bidirectional):
        table = params[name + ".weight"]  # [buckets, nh]
        rel = torch.arange(sk)[None, :] - torch.arange(sq)[:, None]
        buckets = relative_bucket(rel, bidirectional, st["relative_attention_num_buckets"],
                                  st["relative_attention_max_distance"])
        return table[buckets].permute(2, 0, 1)  # [nh, sq, sk]

    def stack(x, st, prefix, keep_self, bias, enc_out=None, keep_cross=None):
        nh, hn = st["num_attention_heads"], st["kv_channels"]
        act, gated = activation(st)
        s = x.shape[0]
        for l in range(st["num_layers"]):
            lp = f"{prefix}.layers.{l}."
            layer_bias = None
            if bias is not None:
                layer_bias = bias * (l + 1) if st["apply_query_key_layer_scaling"] else bias
            h = norm(x, lp + "input_layernorm", st)
            qkv = linear(h, lp + "self_attention.query_key_value").view(s, B, nh, 3, hn)
            q, k, v = (qkv[:, :, :, i, :].reshape(s, B, nh * hn) for i in range(3))
            x = x + linear(attention(q, k, v, keep_self, layer_bias, st, nh, hn), lp + "self_attention.dense")
            if enc_out is not None:
                h = norm(x, lp + "post_attention_layernorm", st)
                q = linear(h, lp + "inter_attention.query")
                kv = linear(enc_out, lp + "inter_attention.key_value").view(Te, B, nh, 2, hn)
                k, v = (kv[:, :, :, i, :].reshape(Te, B, nh * hn) for i in range(2))
                x = x + linear(attention(q, k, v, keep_cross, None, st, nh, hn), lp + "inter_attention.dense")
                h = norm(x, lp + "post_inter_attention_layernorm", st)
            else:
                h = norm(x, lp + "post_attention_layernorm", st)
            if gated:
                a = act(linear(h, lp + "mlp.dense_h_to_4h")) * linear(h, lp + "mlp.dense_h_to_4h_2")
            else:
                a = act(linear(h, lp + "mlp.dense_h_to_4h"))
            x = x + linear(a, lp + "mlp.dense_4h_to_h")
        return norm(x, prefix + ".final_layernorm", st)

    enc_mask = torch.arange(Te)[None, :] < enc_len[:, None]  # [b, s] 1 = token
    dec_mask = torch.arange(Td)[None, :] < dec_len[:, None]
    keep_enc = enc_mask[:, None, :] & enc_mask[:, :, None]
    causal = torch.tril(torch.ones(Td, Td, dtype=torch.bool))
    keep_dec = dec_mask[:, None, :] & dec_mask[:, :, None] & causal[None]
    keep_cross = enc_mask[:, None, :] & dec_mask[:, :, None]

    ee = "enc_dec_model.encoder_embedding."
    de = ee if cfg["share_token_embeddings"] else "enc_dec_model.decoder_embedding."
    x = params[ee + "word_embeddings.weight"][enc_tokens.t()]
    y = params[de + "word_embeddings.weight"][dec_tokens.t()]
    enc_bias = dec_bias = None
    if relative:
        enc_bias = position_bias("enc_dec_model.encoder_relative_position_embedding.relative_position_embedding",
                                 cfg["encoder"], Te, Te, True)
        dec_bias = position_bias("enc_dec_model.decoder_relative_position_embedding.relative_position_embedding",
                                 cfg["decoder"], Td, Td, False)
    else:
        x = x + params[ee + "position_embeddings.weight"][torch.arange(Te)][:, None, :]
        y = y + params[de + "position_embeddings.weight"][torch.arange(Td)][:, None, :]
    enc_out = stack(x, cfg["encoder"], "enc_dec_model.enc_dec_model.encoder.model", keep_enc, enc_bias)
    dec_out = stack(y, cfg["decoder"], "enc_dec_model.enc_dec_model.decoder.model", keep_dec, dec_bias, enc_out,
                    keep_cross)
    if cfg["share_decoder_tokens_head_embeddings"]:
        logits = dec_out @ params[de + "word_embeddings.weight"].t()
        if "enc_dec_model.tokens_head.bias" in params:
            logits = logits + params["enc_dec_model.tokens_head.bias"]
    else:
        logits = dec_out @ params["enc_dec_model.tokens_head.weight"].t()
    return logits


def main(inp, outp):
    t, meta = safetensors_io.load(inp)
    cfg = json.loads(meta["config"])
    dt = torch.float64
    params = {k: v.to(dt).requires_grad_(True) for k, v in t.items() if k.startswith("enc_dec_model.")}
    enc_tokens = t["encoder_tokens"].long()
    dec_tokens = t["tokens"].long()
    labels = t["labels"].long()
    mask = t["loss_mask"].to(dt)
    enc_len = t["encoder_lengths"].long()
    dec_len = t["decoder_lengths"].long()
    B = enc_tokens.shape[0]
    Td = dec_tokens.shape[1]
    logits = model_logits(params, cfg, enc_tokens, dec_tokens, enc_len, dec_len)
    losses = F.cross_entropy(logits.reshape(Td * B, -1), labels.t().reshape(-1), reduction="none").view(Td, B)
    loss = (losses * mask.t()).sum() / mask.sum()
    loss.backward()
    out = {"logits": logits.transpose(0, 1).contiguous().detach(), "loss": loss.detach().reshape(1)}
    for k, v in params.items():
        out[k] = v.grad if v.grad is not None else torch.zeros_like(v)
    safetensors_io.save(outp, {k: v.to(torch.float32) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
