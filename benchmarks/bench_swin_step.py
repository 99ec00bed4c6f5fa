"""Training-step benchmark: our Swin UNETR network vs MONAI's ``SwinUNETR`` of the same configuration.

One step = forward + cross-entropy loss + backward, batch 2, one input channel, two classes, feature size 48,
depths (2, 2, 2, 2), heads (3, 6, 12, 24), window 7. Both models run side by side in one invocation, each
measurement in a fresh subprocess (so peak memory is its own). Patch sizes are nnU-Net (Z, Y, X); MONAI gets the
same tensor (its axis order does not change the cost).

CPU: wall time per step (median of ``--repeats``) and the process CPU time of the same steps (user + system over all
threads; steadier than wall time on a shared machine), peak memory = the subprocess's maximum resident set size.
With ``--rounds R`` the two models alternate R times, each time in a fresh subprocess, and the median over rounds is
reported, so that a change in machine load hits both alike.
CUDA (``--device cuda``): bf16 autocast, TF32 off, time by CUDA synchronisation, peak memory =
``torch.cuda.max_memory_allocated``.

    python benchmarks/bench_swin_step.py                        # CPU, 128x128x64 and 96^3
    python benchmarks/bench_swin_step.py --device cuda --repeats 10
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time

SIZES = {"128x128x64": (64, 128, 128), "96^3": (96, 96, 96)}  # name (X x Y x Z as the paper writes it) -> (Z, Y, X)


def _build(which: str):
    if which == "ours":
        from nnunet_swin.networks import SwinSegmentationNetwork
        from nnunet_swin.networks.presets import get_preset
        kw = get_preset("swin_unetr")
        kw["merge_order"] = "monai16"  # same function as MONAI 1.6; the legacy order costs the same
        return SwinSegmentationNetwork(1, 2, **kw)
    from monai.networks.nets import SwinUNETR
    return SwinUNETR(in_channels=1, out_channels=2, feature_size=48)


def _measure(which: str, size: tuple[int, int, int], device: str, repeats: int, warmup: int, queue) -> None:
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    net = _build(which).to(device).train()
    x = torch.randn(2, 1, *size, device=device)
    y = torch.randint(0, 2, (2, *size), device=device)

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = F.cross_entropy(net(x).float(), y)
        loss.backward()
        net.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB
    queue.put({"time_s": statistics.median(times), "cpu_s": statistics.median(cpu_times), "peak_gib": peak,
               "threads": torch.get_num_threads()})


def run(which: str, size, device: str, repeats: int, warmup: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(which, size, device, repeats, warmup, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _median_of_rounds(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per model and size (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating ours/MONAI rounds, each a fresh subprocess (median over rounds reported)")
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    rows = []
    print(f"device={args.device} batch=2 repeats={args.repeats} warmup={args.warmup} rounds={args.rounds}"
          + (" autocast=bf16" if args.device == "cuda" else ""))
    print(f"{'size':>11} | {'ours s':>8} {'MONAI s':>8} {'ratio':>6} | {'ours cpu-s':>10} {'MONAI cpu-s':>11} "
          f"{'ratio':>6} | {'ours GiB':>8} {'MONAI GiB':>9} {'ratio':>6}")
    for name in args.sizes:
        results = {"ours": [], "monai": []}
        for _ in range(args.rounds):
            for which in results:
                results[which].append(run(which, SIZES[name], args.device, args.repeats, args.warmup))
        ours, ref = (_median_of_rounds(results[w]) for w in ("ours", "monai"))
        row = {"size": name, "zyx": SIZES[name], "ours": ours, "monai": ref,
               "time_ratio": ours["time_s"] / ref["time_s"], "cpu_ratio": ours["cpu_s"] / ref["cpu_s"],
               "memory_ratio": ours["peak_gib"] / ref["peak_gib"]}
        rows.append(row)
        print(f"{name:>11} | {ours['time_s']:8.2f} {ref['time_s']:8.2f} {row['time_ratio']:6.2f} | "
              f"{ours['cpu_s']:10.2f} {ref['cpu_s']:11.2f} {row['cpu_ratio']:6.2f} | "
              f"{ours['peak_gib']:8.2f} {ref['peak_gib']:9.2f} {row['memory_ratio']:6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
