"""Benchmark: an ADI pass (probed forward + dilution reduction) against a plain inference forward on the same crops.

Target (issue 6): ADI pass <= 1.5x the plain forward. Both run under ``torch.no_grad`` with the same network, the
same placed crops and the same padding mask; the plain forward uses the fused attention path, the ADI pass the
explicit softmax the probe needs plus ``AttentionDilutionMeter``. After one warm-up of each, the two are timed
alternately --repeats times; the ratio uses the minimum over runs of the process CPU time (``time.process_time``,
all threads), which a machine shared with other jobs disturbs far less than wall time; wall times are printed too.

Run:  python benchmarks/bench_adi.py [--preset smit_tiny] [--crop 64 128 128] [--scans 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nnunet_swin.analysis.attention_dilution import AttentionDilutionMeter
from nnunet_swin.analysis.crop_placement import place_in_crop
from nnunet_swin.networks import SwinSegmentationNetwork
from nnunet_swin.networks.presets import get_preset


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smit_tiny")
    p.add_argument("--crop", type=int, nargs=3, default=[64, 128, 128], help="Z Y X")
    p.add_argument("--scans", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = get_preset(args.preset)
    arch["strides"] = [[2, 2, 2]] * 5
    net = SwinSegmentationNetwork(input_channels=1, num_classes=2, deep_supervision=False, **arch).eval()
    net = net.to(args.device)
    rng = np.random.default_rng(0)
    crops = [place_in_crop(rng.standard_normal((1, z, args.crop[1] + 8, args.crop[2] + 8)).astype(np.float32),
                           args.crop) for z in np.linspace(args.crop[0] * 0.4, args.crop[0] * 0.9, args.scans).astype(int)]
    xs = [torch.from_numpy(c.data[None]).to(args.device) for c in crops]
    ms = [torch.from_numpy(c.mask[None]).to(args.device) for c in crops]

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def plain():
        for x, m in zip(xs, ms):
            net(x, padding_mask=m)
        sync()

    def adi():
        meter = AttentionDilutionMeter()
        for i, (x, m) in enumerate(zip(xs, ms)):
            meter.start_batch([f"s{i}"])
            with net.encoder.attention_probe(meter):
                net(x, padding_mask=m)
        sync()
        meter.results()

    wall = {"plain": [], "adi": []}
    cpu = {"plain": [], "adi": []}
    clock = time.perf_counter if args.device.startswith("cuda") else time.process_time
    with torch.no_grad():
        plain()
        adi()
        for _ in range(args.repeats):        # interleaved so that machine load hits both alike
            for name, fn in (("plain", plain), ("adi", adi)):
                t0, c0 = time.perf_counter(), clock()
                fn()
                cpu[name].append(clock() - c0)
                wall[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in cpu.items()}
    ratio = best["adi"] / best["plain"]
    wall_ratio = statistics.median(wall["adi"]) / statistics.median(wall["plain"])
    what = "wall" if args.device.startswith("cuda") else "CPU"
    print(f"{args.preset}, crop {args.crop} (Z, Y, X), {args.scans} scans, {args.threads} threads, {args.device}")
    for name, label in (("plain", "plain forward"), ("adi", "ADI pass")):
        print(f"{label:14s} {what} min {best[name]:.3f} s (runs {', '.join(f'{t:.2f}' for t in cpu[name])}); "
              f"wall median {statistics.median(wall[name]):.3f} s")
    print(f"ratio ADI / plain = {ratio:.2f}x by {what} time, {wall_ratio:.2f}x by median wall time (target <= 1.5x)")
    return {"plain_s": best["plain"], "adi_s": best["adi"], "ratio": ratio, "wall_ratio": wall_ratio}


if __name__ == "__main__":
    main()
