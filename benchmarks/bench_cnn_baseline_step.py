"""Benchmark: one training step of the study's CNN baseline (stock nnU-Net plans, e.g. ResEnc-M) against one of the
ACT arm (our Swin plans, ``3d_fullres``), each at its own plans' patch and batch size, on the CPU.

The study gives both arms the same epochs x iterations, so this ratio is the ratio of their training costs. A step is
forward + cross-entropy (summed over the deep-supervision outputs for the CNN, as nnU-Net trains it) + backward +
an SGD / AdamW update, on random input. After one warm-up each, the two are timed alternately --repeats times; the
ratio uses the minimum process CPU time (``time.process_time``, all threads), which a shared machine disturbs far
less than wall time; wall times are printed too.

Run:  python benchmarks/bench_cnn_baseline_step.py --cnn-plans PRE/nnUNetResEncUNetMPlans.json \
          --swin-plans PRE/nnUNetSMITPlans.json --dataset-json RAW/dataset.json [--repeats 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import time

import torch


def _network(plans_file: str, dataset_json: str, configuration: str, swin: bool):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_swin.trainers import SwinBaseTrainer

    plans, ds = json.load(open(plans_file)), json.load(open(dataset_json))
    pm = PlansManager(plans)
    cm = pm.get_configuration(configuration)
    in_ch = determine_num_input_channels(pm, cm, ds)
    out_ch = pm.get_label_manager(ds).num_segmentation_heads
    build = SwinBaseTrainer if swin else nnUNetTrainer
    net = build.build_network_architecture(pm, cm, in_ch, out_ch, enable_deep_supervision=not swin)
    return net, [cm.batch_size, in_ch, *cm.patch_size], out_ch


def _step(net, optimiser, shape, classes) -> tuple[float, float]:
    x = torch.randn(shape)
    c0, w0 = time.process_time(), time.perf_counter()
    out = net(x)
    outs = out if isinstance(out, (list, tuple)) else [out]
    loss = sum(torch.nn.functional.cross_entropy(o, torch.randint(0, classes, (o.shape[0], *o.shape[2:])))
               for o in outs)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return time.process_time() - c0, time.perf_counter() - w0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cnn-plans", required=True)
    p.add_argument("--swin-plans", required=True)
    p.add_argument("--dataset-json", required=True)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cnn, cnn_shape, classes = _network(args.cnn_plans, args.dataset_json, "3d_fullres", swin=False)
    swin, swin_shape, _ = _network(args.swin_plans, args.dataset_json, "3d_fullres", swin=True)
    nets = {"CNN": (cnn, torch.optim.SGD(cnn.parameters(), 1e-2, momentum=0.99, nesterov=True), cnn_shape),
            "ACT": (swin, torch.optim.AdamW(swin.parameters(), 3e-4), swin_shape)}
    for net, opt, shape in nets.values():
        net.train()
        _step(net, opt, shape, classes)                       # warm-up
    times = {k: [] for k in nets}
    for _ in range(args.repeats):
        for name, (net, opt, shape) in nets.items():
            times[name].append(_step(net, opt, shape, classes))
    result = {name: {"input": nets[name][2], "parameters": sum(p.numel() for p in nets[name][0].parameters()),
                     "cpu_s": min(c for c, _ in t), "wall_s": min(w for _, w in t)} for name, t in times.items()}
    result["ratio_cpu"] = result["CNN"]["cpu_s"] / result["ACT"]["cpu_s"]
    for name in nets:
        r = result[name]
        print(f"{name}: input {r['input']} ({r['parameters'] / 1e6:.1f} M parameters): {r['cpu_s']:.2f} CPU-s, "
              f"{r['wall_s']:.2f} s wall per training step ({args.threads} threads)")
    print(f"CNN / ACT per training step: {result['ratio_cpu']:.1f}x (process CPU time, minimum of {args.repeats})")
    return result


if __name__ == "__main__":
    main()
