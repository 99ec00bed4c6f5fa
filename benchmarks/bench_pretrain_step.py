"""A pretraining step against a fine-tuning step, same backbone and crop, in one run.

- pretraining (``Pretrainer.train_step``): ``--volumes`` volumes x 2 views; teacher forward on the unmasked views,
  block masks, student forward + backward on the masked views, heads, MIP/MPD/ITD (+ CTD for SMART), AdamW, EMA;
- fine-tuning: ``SwinSegmentationNetwork`` forward + backward on the same number of crops (2 x ``--volumes``) with
  nnU-Net's Dice + CE (``DC_and_CE_loss``) and AdamW, the recipe's step.

Each mode runs in its own subprocess so that peak memory (CPU: the process's max RSS; CUDA: max allocated) is its
own. Prints per-step wall time (median of ``--repeats`` after one warm-up step), the ratio, and peak memory; with
``--json`` also writes them.

    python benchmarks/bench_pretrain_step.py --backbone smit --crop 96 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _sync(device):
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_pretrain(args) -> dict:
    import torch

    from nnunet_swin.pretraining.trainer import Pretrainer, PretrainConfig
    cfg = PretrainConfig(method=args.method, backbone=args.backbone, crop=args.crop, batch_size=args.volumes,
                         epochs=10, iterations_per_epoch=10, out_dim=args.out_dim, num_workers=0)
    trainer = Pretrainer(cfg, "/nonexistent", [], device=args.device, progress=False, log_to_console=False)
    trainer.build_models()
    g = torch.Generator().manual_seed(0)
    views = torch.rand((2, args.volumes, 1, args.crop, args.crop, args.crop), generator=g)
    valid = torch.ones((2, args.volumes, args.crop, args.crop, args.crop), dtype=torch.bool)
    times = []
    for i in range(args.repeats + 1):
        _sync(args.device)
        t0 = time.perf_counter()
        trainer.train_step(views, valid, epoch=1, iteration=i)
        _sync(args.device)
        times.append(time.perf_counter() - t0)
    return {"times": times[1:], "params": sum(p.numel() for p in trainer.student.parameters())}


def run_finetune(args) -> dict:
    import torch
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = SwinSegmentationNetwork(1, 2, **get_preset(args.backbone)).to(device)
    loss_fn = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, weight_ce=1,
                             weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=1e-5)
    n = 2 * args.volumes
    x = torch.rand((n, 1, args.crop, args.crop, args.crop), device=device)
    y = (torch.rand((n, 1, args.crop, args.crop, args.crop), device=device) > 0.9).float()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device.startswith("cuda") else None
    times = []
    for _ in range(args.repeats + 1):
        _sync(args.device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if autocast is not None:
            with autocast:
                loss = loss_fn(net(x), y)
        else:
            loss = loss_fn(net(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        opt.step()
        _sync(args.device)
        times.append(time.perf_counter() - t0)
    return {"times": times[1:], "params": sum(p.numel() for p in net.parameters())}


def child(args) -> None:
    import torch
    result = run_pretrain(args) if args.mode == "pretrain" else run_finetune(args)
    if args.device.startswith("cuda"):
        result["peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="smit")
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--volumes", type=int, default=1, help="pretraining volumes per step (2 views each)")
    p.add_argument("--method", default="smit", choices=["smit", "smart"])
    p.add_argument("--out-dim", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    p.add_argument("--mode", choices=["pretrain", "finetune"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        child(args)
        return
    results = {}
    for mode in ("pretrain", "finetune"):
        cmd = [sys.executable, __file__, "--mode", mode] + [a for a in sys.argv[1:] if not a.startswith("--json")
                                                          and a != args.json]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            sys.exit(f"{mode} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        results[mode] = json.loads(line[len("RESULT "):])
    pre, fin = (statistics.median(results[m]["times"]) for m in ("pretrain", "finetune"))
    print(f"backbone {args.backbone}, crop {args.crop}^3, device {args.device}, {2 * args.volumes} crops per step, "
          f"{args.repeats} timed step(s) after one warm-up")
    print(f"pretraining step ({args.method}, student {results['pretrain']['params'] / 1e6:.1f} M params incl. "
          f"heads): {pre:.2f} s, peak {results['pretrain']['peak_mib']:.0f} MiB")
    print(f"fine-tuning step (SwinSegmentationNetwork {results['finetune']['params'] / 1e6:.1f} M params, Dice+CE): "
          f"{fin:.2f} s, peak {results['finetune']['peak_mib']:.0f} MiB")
    print(f"ratio pretraining / fine-tuning: {pre / fin:.2f}x (goal <= 1.6x)")
    if args.json:
        from nnunet_swin.io import write_json
        write_json(args.json, {"args": {k: v for k, v in vars(args).items() if k != "mode"}, **results,
                               "pretrain_s": pre, "finetune_s": fin, "ratio": pre / fin})


if __name__ == "__main__":
    main()
