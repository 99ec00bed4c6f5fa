"""`nnunet-swin adi`: attention dilution index per Swin stage (argument parsing only)."""
from __future__ import annotations

import argparse
import json

from nnunet_swin.cli import options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        parents=[options.device(), options.progress()],
        prog="nnunet-swin adi",
        description="Attention dilution index (paper eq. 7) per Swin stage for every image of a raw folder: "
                    "nnU-Net predictor preprocessing, centred zero-padding / centre crop into the configuration's "
                    "patch, one probed forward pass. Input padding and Swin window padding are reported apart.")
    p.add_argument("-m", "--model", action="append", default=[],
                   help="trained model folder <Trainer>__<Plans>__<configuration> (repeat for several)")
    p.add_argument("--label", action="append", default=[], help="a name per --model (default: the folder name)")
    p.add_argument("-i", "--images", required=True, help="raw images ({case}_{XXXX}.ext)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("-f", "--fold", default="0")
    p.add_argument("--checkpoint", default="checkpoint_final.pth")
    p.add_argument("-c", "--configuration", help="configuration (default: the checkpoint's)")
    p.add_argument("--plans", help="backbone mode: plans JSON (nnUNet_preprocessed/DatasetXXX/<Plans>.json)")
    p.add_argument("--dataset-json", help="backbone mode: the dataset.json")
    p.add_argument("--pretrained", help="backbone mode: pretrained encoder checkpoint (omit for random weights)")
    p.add_argument("--add", action="append", default=[], metavar="LABEL=CSV",
                   help="add the per-scan table of an earlier run to the figures (repeatable)")
    p.add_argument("--evaluation", help="per-case evaluation CSV (case_id + metric) for the binned figure")
    p.add_argument("--metric", help="metric column of --evaluation (default: sdsc / nsd / surface_dice / dice)")
    p.add_argument("--batch-size", type=int, default=1)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nnunet_swin.analysis.dilution_report import adi_for_models

    summary = adi_for_models(args.images, args.output, args.model, args.label, args.fold, args.checkpoint,
                             args.configuration, args.plans, args.dataset_json, args.pretrained, args.add,
                             args.evaluation, args.metric, args.batch_size, args.device, progress=not args.quiet)
    for label, s in summary["models"].items():
        means = {k: round(v["adi"]["mean"], 4) for k, v in s.get("stages", {}).items()}
        print(f"{label}: mean ADI per stage {json.dumps(means)}; scans {s['n_scans']}, padded {s['padded_scans']}")
    print(f"wrote {args.output}")
    return 0
