"""`nnunet-swin study`: the paper's whole study on one dataset as one resumable command (argument parsing only)."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnunet-swin study",
        description="Plan, train every arm with stock nnUNetv2_train (finished arms skipped, interrupted ones resumed "
                    "with --c), predict with stock nnUNetv2_predict, then evaluate, compare (Table 2), subtypes, ADI "
                    "and CKA, and write report.md + a self-contained report.html. State in OUTPUT/study.json.")
    p.add_argument("-o", "--output", required=True, help="study folder (report, logs, predictions, study.json)")
    p.add_argument("-d", "--dataset_id", type=int, default=None, help="nnU-Net dataset id, e.g. 501")
    p.add_argument("-pl", "--planner", default="SMITPlanner", help="SMITPlanner (default) or SwinUNETRPlanner")
    p.add_argument("-p", "--plans", default=None,
                   help="plans identifier (default nnUNetSMITPlans / nnUNetSwinUNETRPlans by planner)")
    p.add_argument("-backbone", "--backbone", default=None, help="backbone for planning (e.g. smit_tiny)")
    p.add_argument("--plan-args", default="",
                   help="more plan_and_preprocess flags as one string, e.g. \"-tumor_labels 1 -inplane_patch 96 96\"")
    p.add_argument("--arms", nargs="+", default=None,
                   help="Base TA ACT Scratch, subtype arms B-only D-only / only:<subtype> (default: the preset's)")
    p.add_argument("--folds", nargs="+", type=int, default=[0], help="cross-validation folds (default 0)")
    p.add_argument("--preset", choices=("paper", "smoke", "demo"), default="paper",
                   help="paper: the recipe's trainers; smoke: ACT + Base with _smoke trainers (minutes); demo: the "
                        "synthetic dataset, smit_tiny, _demo trainers, every arm, CPU (hours)")
    p.add_argument("--jobs", type=int, default=1, help="arms trained at the same time (default 1)")
    p.add_argument("--devices", nargs="+", default=None,
                   help="CUDA device ids, one arm per device at a time (e.g. --devices 0 1, or 0,1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="without --devices: cpu or cuda (default cuda when available)")
    p.add_argument("-np", "--num-processes", type=int, default=2, help="worker processes of our steps (default 2)")
    p.add_argument("--print-commands", action="store_true",
                   help="print one shell line per arm (e.g. for a SLURM array) and exit")
    p.add_argument("--report-only", action="store_true", help="train nothing; aggregate whatever has finished")
    p.add_argument("--seed", type=int, default=0, help="seed of the demo data and stand-in checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output (logs are still written)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nnunet_swin.workflows.study import StudySettings, run_study

    devices = None
    if args.devices is not None:
        devices = [d for item in args.devices for d in item.split(",") if d.strip()]
    device = args.device
    if device is None:
        if args.preset == "demo":
            device = "cpu"
        else:
            import torch
            device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = StudySettings(output=Path(args.output), dataset_id=args.dataset_id, planner=args.planner,
                             plans=args.plans, backbone=args.backbone, plan_args=shlex.split(args.plan_args),
                             arms=args.arms, folds=args.folds, preset=args.preset, jobs=args.jobs, devices=devices,
                             device=device, num_processes=args.num_processes, print_commands=args.print_commands,
                             report_only=args.report_only, progress=not args.quiet, seed=args.seed)
    result = run_study(settings)
    if args.print_commands:
        if result:
            print("\n".join(result))
        else:
            import sys
            print("nnunet-swin study: every arm has finished; nothing to train", file=sys.stderr)
    else:
        print(f"report: {result} (and {Path(result).with_suffix('.html')})")
    return 0
