"""`nnunet-swin cka`: linear CKA feature reuse between two models (argument parsing only)."""
from __future__ import annotations

import argparse
import json

from nnunet_swin.cli import options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        parents=[options.device(), options.progress(), options.seed(0)],
        prog="nnunet-swin cka",
        description="Layer x layer minibatch linear CKA (unbiased HSIC, float64) between the transformer blocks of "
                    "two models on the same raw images; block outputs pooled to 8x8x8 tokens.")
    p.add_argument("-a", "--model-a", help="trained model folder A (or use --pretrained for A)")
    p.add_argument("-b", "--model-b", help="trained model folder B (or use --random-b)")
    p.add_argument("--random-b", action="store_true",
                   help="model B = the network of --plans / --dataset-json / -c, untrained (random initialisation "
                        "with --seed): the floor any network of that layout reaches")
    p.add_argument("--plans", help="with --random-b: the plans file (nnUNet_preprocessed/DatasetXXX/<Plans>.json)")
    p.add_argument("--dataset-json", help="with --random-b: the dataset's dataset.json")
    p.add_argument("-c", "--configuration", help="with --random-b: the plans configuration (e.g. 3d_fullres)")
    p.add_argument("--pretrained", help="model A = B's architecture with this pretrained encoder checkpoint")
    p.add_argument("--label-a", default=None)
    p.add_argument("--label-b", default=None)
    p.add_argument("-i", "--images", required=True, help="raw images ({case}_{XXXX}.ext)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--fold-a", default="0")
    p.add_argument("--fold-b", default="0")
    p.add_argument("--checkpoint", default="checkpoint_final.pth")
    p.add_argument("--batch-size", type=int, default=8, help="fixed CKA minibatch (>= 4); short last batch dropped")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nnunet_swin.analysis.feature_reuse import cka_for_models

    random_b = (args.plans, args.dataset_json, args.configuration, args.seed) if args.random_b else None
    summary = cka_for_models(args.images, args.output, args.model_b, args.model_a, args.pretrained,
                             (args.label_a, args.label_b), (args.fold_a, args.fold_b), args.checkpoint,
                             args.batch_size, args.device, progress=not args.quiet, random_b=random_b)
    print(json.dumps({k: summary[k] for k in ("images", "images_used", "images_dropped", "mean_diagonal")}))
    print(f"wrote {args.output}")
    return 0
