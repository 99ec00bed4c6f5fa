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
``torch.cuda.max_memory_allocated``. (``benchmarks/gpu_check.py`` is the full GPU check: fp16 + GradScaler +
``torch.compile``, as nnU-Net trains.)

``--models ours_plain`` adds our network with the CPU kernels switched off (``networks.cpu_kernels``: the plain layers
CUDA runs), which shows what each CPU kernel is worth; ``--zyx Z Y X`` times one custom size (e.g. a quick check).

    python benchmarks/bench_swin_step.py                        # CPU, 128x128x64 and 96^3
    python benchmarks/bench_swin_step.py --models ours ours_plain monai --zyx 32 64 64 --repeats 2
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


MODELS = ("ours", "monai", "ours_plain")


def _build(which: str):
    if which in ("ours", "ours_plain"):
        from nnunet_swin.networks import SwinSegmentationNetwork
        from nnunet_swin.networks.presets import get_preset
        if which == "ours_plain":
            from nnunet_swin.networks import cpu_kernels
            cpu_kernels.enabled = False
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
                        help="alternating rounds over the models, each a fresh subprocess (median over rounds reported)")
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--zyx", nargs=3, type=int, metavar=("Z", "Y", "X"),
                        help="time this one size (multiples of 32) instead of --sizes")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["ours", "monai"],
                        help="models side by side; ratios are against the last one")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    sizes = {"x".join(map(str, args.zyx[::-1])): tuple(args.zyx)} if args.zyx else {n: SIZES[n] for n in args.sizes}
    ref_name = args.models[-1]
    rows = []
    print(f"device={args.device} batch=2 repeats={args.repeats} warmup={args.warmup} rounds={args.rounds}"
          + (" autocast=bf16" if args.device == "cuda" else "") + f"; ratios against {ref_name}")
    print(f"{'size':>11} | {'model':>10} | {'s':>7} {'ratio':>6} | {'cpu-s':>7} {'ratio':>6} | {'GiB':>6} {'ratio':>6}")
    for name, zyx in sizes.items():
        results = {which: [] for which in args.models}
        for _ in range(args.rounds):
            for which in results:
                results[which].append(run(which, zyx, args.device, args.repeats, args.warmup))
        medians = {which: _median_of_rounds(r) for which, r in results.items()}
        ref = medians[ref_name]
        row = {"size": name, "zyx": zyx, "models": medians, "ratios": {}}
        for which, m in medians.items():
            ratios = {"time": m["time_s"] / ref["time_s"], "cpu": m["cpu_s"] / ref["cpu_s"],
                      "memory": m["peak_gib"] / ref["peak_gib"]}
            row["ratios"][which] = ratios
            print(f"{name:>11} | {which:>10} | {m['time_s']:7.2f} {ratios['time']:6.2f} | {m['cpu_s']:7.2f} "
                  f"{ratios['cpu']:6.2f} | {m['peak_gib']:6.2f} {ratios['memory']:6.2f}", flush=True)
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "reference": ref_name, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
