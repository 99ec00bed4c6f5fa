"""Cost of the spine variant's modules (the spine paper's open question 1), against plain Swin UNETR.

Four networks of the full Swin UNETR configuration (feature size 48, depths 2-2-2-2, window 7): plain, +multi-scale
fusion, +adaptive attention, both (``swin_unetr_msf``). For each: parameters, FLOPs of one training step (forward +
backward, counted by ``torch.utils.flop_counter.FlopCounterMode``), wall time of a training step (forward +
cross-entropy + backward, batch 2; median of ``--repeats``) and peak memory (the subprocess's maximum resident set
size on CPU, ``torch.cuda.max_memory_allocated`` on CUDA). Each measurement runs in a fresh subprocess; with
``--rounds R`` the four alternate R times and the median over rounds is reported, so machine load hits all alike.
Ratios are against the plain network of the same run. Goal: the full variant at most 1.25x the plain step time.

    python benchmarks/bench_spine_variant.py --zyx 64 64 64 --rounds 1
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time

VARIANTS = {"plain": {}, "+fusion": {"multiscale_fusion": True}, "+adaptive": {"adaptive_attention": True},
            "both": {"multiscale_fusion": True, "adaptive_attention": True}}


def _network(variant: str):
    from nnunet_swin.networks import SwinSegmentationNetwork
    from nnunet_swin.networks.presets import get_preset

    return SwinSegmentationNetwork(1, 2, **{**get_preset("swin_unetr"), **VARIANTS[variant]})


def _measure(variant: str, size, device: str, repeats: int, warmup: int, count_flops: bool, queue) -> None:
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    net = _network(variant).to(device).train()
    x = torch.randn(2, 1, *size, device=device)
    y = torch.randint(0, 2, (2, *size), device=device)

    def step():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        if device == "cuda":
            torch.cuda.synchronize()

    flops = None
    if count_flops:
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    queue.put({"variant": variant, "seconds": statistics.median(times), "peak_bytes": peak, "flops": flops,
               "parameters": sum(p.numel() for p in net.parameters())})


def run(variant, size, device, repeats, warmup, count_flops):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(variant, size, device, repeats, warmup, count_flops, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zyx", type=int, nargs=3, default=[96, 96, 96], help="patch (Z, Y, X), default 96^3")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the rows here")
    a = p.parse_args(argv)
    rows = {v: [] for v in VARIANTS}
    flops = {}
    for r in range(a.rounds):
        for variant in VARIANTS:
            out = run(variant, tuple(a.zyx), a.device, a.repeats, a.warmup, count_flops=(r == 0))
            rows[variant].append(out)
            if out["flops"] is not None:
                flops[variant] = out["flops"]
            print(f"round {r + 1} {variant}: {out['seconds']:.2f} s, peak {out['peak_bytes'] / 2 ** 30:.2f} GiB",
                  flush=True)
    base = {k: statistics.median(x[k] for x in rows["plain"]) for k in ("seconds", "peak_bytes")}
    table = []
    print(f"\n{a.device}, batch 2, patch (Z, Y, X) {a.zyx}, medians over {a.rounds} round(s); ratios vs plain")
    print("| variant | parameters | step FLOPs | step time | peak memory |")
    print("|---|---|---|---|---|")
    for variant, results in rows.items():
        sec = statistics.median(x["seconds"] for x in results)
        peak = statistics.median(x["peak_bytes"] for x in results)
        params = results[0]["parameters"]
        row = {"variant": variant, "parameters": params, "flops": flops[variant], "seconds": sec, "peak_bytes": peak,
               "parameters_ratio": params / rows["plain"][0]["parameters"], "flops_ratio": flops[variant] /
               flops["plain"], "time_ratio": sec / base["seconds"], "memory_ratio": peak / base["peak_bytes"]}
        table.append(row)
        print(f"| {variant} | {params / 1e6:.2f} M ({row['parameters_ratio']:.3f}x) | {flops[variant] / 1e9:.0f} G "
              f"({row['flops_ratio']:.3f}x) | {sec:.2f} s ({row['time_ratio']:.2f}x) | {peak / 2 ** 30:.2f} GiB "
              f"({row['memory_ratio']:.2f}x) |")
    if a.json:
        from nnunet_swin.io import write_json
        write_json(a.json, {"device": a.device, "zyx": a.zyx, "rounds": a.rounds, "rows": table})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
