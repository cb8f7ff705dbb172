#!/usr/bin/env python3
"""Turns the JSON lines of bench_gpt_cuda, bench_cuda_kernels and torch_gpt.py into the markdown
tables of docs/performance.md: models (bignlp vs PyTorch), attention (vs SDPA, with the backend
PyTorch chose) and GEMM (vs the measured bf16 peak).

  bench_table.py bench.jsonl
"""
import json
import sys


def load(path):
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return records


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    recs = load(sys.argv[1])
    out = []
    dev = next((r for r in recs if r.get("bench") == "device"), None)
    if dev:
        out.append(f"Device: {dev['name']} ({dev['sm_count']} SMs, compute capability {dev['cc']}, "
                   f"{dev['memory_gib']} GiB)\n")

    gpt = [r for r in recs if r.get("bench") == "gpt"]
    if gpt:
        out.append("| model | impl | B x T | step (ms) | tokens/s | vs PyTorch | model TFLOP/s | MFU | peak memory (GiB) |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        names = list(dict.fromkeys(r["name"] for r in gpt))
        for name in names:
            rows = {r["impl"]: r for r in gpt if r["name"] == name}
            torch_tps = rows.get("torch", {}).get("tokens_per_s")
            for impl in ("bignlp", "torch"):
                r = rows.get(impl)
                if r is None:
                    continue
                ratio = r["tokens_per_s"] / torch_tps if torch_tps and impl == "bignlp" else None
                mem = r.get("peak_reserved_gib")
                out.append(f"| {name} | {impl} | {r['micro_batch']} x {r['seq']} | {r['step_ms']:.1f} | "
                           f"{r['tokens_per_s']:,.0f} | {fmt(ratio, '.2f') + 'x' if ratio else '-'} | "
                           f"{r['tflops']:.1f} | {100 * r['mfu']:.1f}% | {fmt(mem, '.1f')} |")
        extra = [r for r in gpt if r["impl"] == "bignlp" and r.get("cuda_mallocs_in_timed_steps")]
        for r in extra:
            out.append(f"\nnote: {r['name']}: {r['cuda_mallocs_in_timed_steps']} cudaMalloc calls during timed steps")
        out.append("")

    att = [r for r in recs if r.get("bench") == "attention" and "tflops" in r]
    if att:
        out.append("| attention (causal, bf16) | pass | bignlp TFLOP/s | PyTorch SDPA default TFLOP/s (backend) | "
                   "vs SDPA | best SDPA backend TFLOP/s |")
        out.append("|---|---|---|---|---|---|")
        for name in dict.fromkeys(r["name"] for r in att):
            for pass_name in ("fwd", "fwd+bwd"):
                ours = next((r for r in att if r["name"] == name and r["pass"] == pass_name and r["impl"] == "bignlp"), None)
                torch_rows = [r for r in att if r["name"] == name and r["pass"] == pass_name and r["impl"] == "torch"]
                default = next((r for r in torch_rows if r.get("dispatch") == "default"), None)
                best = max(torch_rows, key=lambda r: r["tflops"], default=None)
                shape = ours or default
                if shape is None:
                    continue
                label = f"{name} (B {shape['b']}, NH {shape['nh']}, T {shape['t']}, HS {shape['hs']})"
                ratio = ours["tflops"] / default["tflops"] if ours and default else None
                out.append(f"| {label} | {pass_name} | {fmt(ours and ours['tflops'], '.1f')} | "
                           f"{fmt(default and default['tflops'], '.1f')} ({default['backend'] if default else '-'}) | "
                           f"{fmt(ratio, '.2f') + 'x' if ratio else '-'} | "
                           f"{fmt(best and best['tflops'], '.1f')} ({best['backend'] if best else '-'}) |")
        out.append("")

    gemm = [r for r in recs if r.get("bench") == "gemm"]
    if gemm:
        peak = next((r["tflops"] for r in gemm if r["name"] == "peak bf16"), None)
        out.append("| GEMM | M x N x K | TFLOP/s | of measured bf16 peak |")
        out.append("|---|---|---|---|")
        for r in gemm:
            share = r["tflops"] / peak if peak else None
            out.append(f"| {r.get('impl', 'bignlp')}: {r['name']} | {r['m']} x {r['n']} x {r['k']} | {r['tflops']:.1f} | "
                       f"{fmt(100 * share if share else None, '.0f')}% |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
