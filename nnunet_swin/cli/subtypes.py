"""`nnunet-swin subtypes`: appearance subtypes by k-means on tumour features (argument parsing only)."""
from __future__ import annotations

import argparse
import json

from nnunet_swin.cli import options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        parents=[options.file_ending(), options.tumor_labels("every foreground label; e.g. the plans' -tumor_labels"),
                 options.seed(0), options.progress()],
        prog="nnunet-swin subtypes",
        description="Fit appearance subtypes (seven tumour features, z-scoring, k-means with k chosen by silhouette, "
                    "Calinski-Harabasz and Davies-Bouldin) on a training set and/or assign them to a test set. "
                    "Writes subtypes_<split>.csv (case_id,subtype) for `nnunet-swin compare`.")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--train-images", help="training images (nnU-Net raw naming {case}_{XXXX}.ext)")
    p.add_argument("--train-labels", help="training labels ({case}.ext)")
    p.add_argument("--test-images", help="test images to assign")
    p.add_argument("--test-labels", help="test labels")
    p.add_argument("--model", help="a stored subtype_model.json to apply instead of fitting")
    p.add_argument("--channel", type=int, default=0, help="image channel the features use (default 0)")
    p.add_argument("--k-min", type=int, default=2)
    p.add_argument("--k-max", type=int, default=5)
    p.add_argument("--k", type=int, default=None, help="force this k instead of choosing by validity")
    p.add_argument("--truth", help="CSV case_id,subtype of known subtypes: report the agreement and write "
                                   "subtypes_audit.json (default: the dataset's subtypes_truth.csv beside the images "
                                   "folders, when there is one)")
    return p


def _pair(args, split: str):
    images, labels = getattr(args, f"{split}_images"), getattr(args, f"{split}_labels")
    if (images is None) != (labels is None):
        from nnunet_swin.errors import UserError
        raise UserError(f"give both --{split}-images and --{split}-labels")
    return None if images is None else (images, labels)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nnunet_swin.analysis.subtype_report import run_subtypes

    summary = run_subtypes(args.output, train=_pair(args, "train"), test=_pair(args, "test"), model_path=args.model,
                           file_ending=args.file_ending, channel=args.channel, k_range=(args.k_min, args.k_max),
                           k=args.k, seed=args.seed, truth=args.truth, progress=not args.quiet,
                           tumor_labels=args.tumor_labels)
    short = {k: v for k, v in summary.items() if k in ("k", "names", "train", "test")}
    print(json.dumps(short, indent=2, default=str))
    print(f"wrote {args.output}")
    return 0
