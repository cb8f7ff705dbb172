#!/usr/bin/env python3
"""Scaling model of the GPT-3 5B / 20B / 175B presets: step time, communication volume per link,
pipeline bubble. Prints the tables of docs/scaling.md (run with /usr/bin/python3).

Every input is labelled in INPUTS: 'config' (conf/training/gpt3/*.yaml), 'anchor' (a published
figure quoted in performance-anchors.md), or 'estimate' (an assumption of this model). No GPU time
is measured here: kernel throughput is an estimate derived from published end-to-end figures.
"""

PEAK_BF16 = 989e12  # H100 SXM dense BF16 FLOP/s (anchor: performance-anchors.md conventions)

INPUTS = {
    # anchor: nccl-tests busbw on one 8xH100 NVLink node, ring (non-all-reduce collectives and
    # all-reduce with NCCL_ALGO=RING) and NVLS (all-reduce only), performance-anchors.md section 6.
    "nvlink_busbw_ring": (370e9, "anchor"),
    "nvlink_busbw_nvls": (480e9, "anchor"),
    # estimate: inter-node bandwidth per GPU. DGX H100 has one 400 Gb/s InfiniBand NIC per GPU
    # (vendor datasheet, not among our anchors); we assume NCCL reaches 80% of line rate.
    "ib_busbw_per_gpu": (0.8 * 400e9 / 8, "estimate"),
    # estimate: the fraction of peak the GEMM/attention kernels reach on these shapes. Published
    # end-to-end MFU of Megatron-Core on H100 is 41-49% for 1.7B-177B (anchor section 2c) with its
    # communication mostly hidden; we take 55% for the kernels alone.
    "kernel_efficiency": (0.55, "estimate"),
}

PRESETS = {
    # config: conf/training/gpt3/{5b,20b,175b}.yaml
    "5B": dict(nodes=20, gpus=8, tp=2, pp=1, vp=1, mbs=2, gbs=1440, L=24, h=4096, a=32, s=2048, sp=False,
               recompute="none"),
    "20B": dict(nodes=80, gpus=8, tp=2, pp=4, vp=1, mbs=1, gbs=1440, L=44, h=6144, a=48, s=2048, sp=True,
                recompute="selective"),
    "175B": dict(nodes=128, gpus=8, tp=8, pp=8, vp=1, mbs=2, gbs=1536, L=96, h=12288, a=96, s=2048, sp=True,
                 recompute="selective"),
}
VOCAB = 50257  # GPT-2 BPE


def padded_vocab(tp, multiple=128):
    m = multiple * tp
    return (VOCAB + m - 1) // m * m


def model(name, p):
    n = p["nodes"] * p["gpus"]
    tp, pp, vp = p["tp"], p["pp"], p["vp"]
    dp = n // (tp * pp)
    L, h, s, b = p["L"], p["h"], p["s"], p["mbs"]
    V = padded_vocab(tp)
    M = p["gbs"] // (b * dp)  # micro-batches per step and DP rank
    B = p["gbs"]
    params = 12 * L * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * L * h))
    # Model FLOPs per step (megatron-model.md section 9) plus selective recompute of QK^T and PV.
    flops = 72 * B * s * L * h * h * (1 + s / (6 * h) + V / (12 * L * h))
    if p["recompute"] == "selective":
        flops += 4 * B * s * s * h * L
    eff = INPUTS["kernel_efficiency"][0]
    compute = flops / n / (eff * PEAK_BF16)  # seconds per step of one GPU's kernels, no bubble
    # Pipeline bubble (1F1B: (p-1)/M of the ideal time; interleaved: divided by vp).
    bubble_overhead = (pp - 1) / (vp * M)
    bubble_fraction = bubble_overhead / (1 + bubble_overhead)
    # Tensor parallel: per layer and micro-batch 2 all-reduces forward + 2 backward of s*b*h bf16
    # (with SP the same volume as all-gather + reduce-scatter pairs); ring bus traffic per GPU
    # 2(t-1)/t * size each. Plus the embedding all-reduce and the logits input gradient per
    # micro-batch on the first/last stage (counted on every stage: an upper bound).
    act_bytes = s * b * h * 2
    tp_bytes = 0.0
    if tp > 1:
        per_op = 2 * (tp - 1) / tp * act_bytes
        tp_bytes = M * (4 * (L // pp) + 2) * per_op
    tp_time = tp_bytes / INPUTS["nvlink_busbw_ring"][0]
    # Pipeline: each micro-batch sends its activation forward and receives its gradient, (s/t)*b*h
    # per TP rank with SP (Megatron's scatter-gather split without SP gives the same 1/t).
    pp_bytes = 0.0 if pp == 1 else 2 * M * act_bytes / tp
    # Where PP traffic runs: within the node when tp*pp <= 8 (the 20B layout), else over IB.
    pp_link = "nvlink" if tp * pp <= p["gpus"] else "ib"
    pp_bw = INPUTS["nvlink_busbw_ring"][0] if pp_link == "nvlink" else INPUTS["ib_busbw_per_gpu"][0]
    pp_time = pp_bytes / pp_bw
    # Data parallel, distributed optimizer: reduce-scatter fp32 gradients, all-gather bf16 params
    # of this rank's tp x pp shard; ring bus traffic (d-1)/d * size each. Across nodes (IB).
    shard_params = params / (tp * pp)
    dp_bytes = (dp - 1) / dp * shard_params * (4 + 2) if dp > 1 else 0.0
    dp_time = dp_bytes / INPUTS["ib_busbw_per_gpu"][0]
    step = compute * (1 + bubble_overhead) + tp_time + pp_time + dp_time  # nothing overlapped
    step_overlap = compute * (1 + bubble_overhead) + tp_time  # PP and DP hidden (best case)
    tokens = B * s
    return dict(name=name, n=n, dp=dp, M=M, V=V, params=params, flops=flops, compute=compute,
                bubble=bubble_fraction, tp_bytes=tp_bytes, tp_time=tp_time, pp_bytes=pp_bytes, pp_time=pp_time,
                pp_link=pp_link, dp_bytes=dp_bytes, dp_time=dp_time, step=step, step_overlap=step_overlap,
                tok_per_gpu=tokens / step / n, mfu=(flops - (4 * B * s * s * h * L if p["recompute"] == "selective"
                                                              else 0)) / step / n / PEAK_BF16)


def main():
    print("inputs:")
    for k, (v, kind) in INPUTS.items():
        print(f"  {k:22s} {v:12.4g}  ({kind})")
    rows = [model(k, v) for k, v in PRESETS.items()]
    print()
    print("| preset | GPUs | TP x PP x DP | M | params | model TFLOP/step | kernel time/step | bubble |")
    print("|---|---|---|---|---|---|---|---|")
    for r, p in zip(rows, PRESETS.values()):
        print(f"| {r['name']} | {r['n']} | {p['tp']} x {p['pp']} x {r['dp']} | {r['M']} | {r['params']/1e9:.2f} B | "
              f"{r['flops']/1e12:,.0f} | {r['compute']:.2f} s | {r['bubble']*100:.1f} % |")
    print()
    print("| preset | TP bytes/GPU/step (NVLink) | TP time | PP bytes/GPU/step (link) | PP time | "
          "DP bytes/GPU/step (IB) | DP time |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['tp_bytes']/1e9:.1f} GB | {r['tp_time']:.3f} s | {r['pp_bytes']/1e9:.2f} GB "
              f"({r['pp_link']}) | {r['pp_time']:.3f} s | {r['dp_bytes']/1e9:.2f} GB | {r['dp_time']:.3f} s |")
    print()
    print("| preset | step time, nothing overlapped | step time, PP+DP hidden | tokens/s/GPU | MFU |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['step']:.2f} s | {r['step_overlap']:.2f} s | {r['tok_per_gpu']:,.0f} | "
              f"{r['mfu']*100:.0f} % |")


if __name__ == "__main__":
    main()
