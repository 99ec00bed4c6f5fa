"""`nnunet-swin cka`: linear CKA feature reuse between two models (argument parsing only)."""
from __future__ import annotations

import argparse
import json

from nnunet_swin.cli import options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        parents=[options.device(), options.progress()],
        prog="nnunet-swin cka",
        description="Layer x layer minibatch linear CKA (unbiased HSIC, float64) between the transformer blocks of "
                    "two models on the same raw images; block outputs pooled to 8x8x8 tokens.")
    p.add_argument("-a", "--model-a", help="trained model folder A (or use --pretrained for A)")
    p.add_argument("-b", "--model-b", required=True, help="trained model folder B")
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
    from pathlib import Path

    from nnunet_swin.analysis.feature_reuse import run_cka
    from nnunet_swin.analysis.model_loading import load_backbone, load_model_folder
    from nnunet_swin.errors import UserError

    if (args.model_a is None) == (args.pretrained is None):
        raise UserError("give exactly one of -a MODEL_FOLDER and --pretrained CHECKPOINT for model A")
    if args.batch_size < 4:
        raise UserError(f"--batch-size must be at least 4 (the unbiased HSIC needs n >= 4), got {args.batch_size}")
    from nnunet_swin.device import resolve_device

    args.device = resolve_device(args.device)
    model_b = load_model_folder(args.model_b, args.fold_b, args.checkpoint)
    if args.model_a:
        model_a = load_model_folder(args.model_a, args.fold_a, args.checkpoint)
        label_a = args.label_a or Path(args.model_a).name
    else:
        folder = Path(args.model_b)
        model_a = load_backbone(folder / "plans.json", folder / "dataset.json", model_b.configuration, args.pretrained)
        label_a = args.label_a or "pretrained"
    label_b = args.label_b or Path(args.model_b).name
    summary = run_cka(model_a, model_b, args.images, args.output, args.batch_size, (label_a, label_b), args.device,
                      progress=not args.quiet)
    print(json.dumps({k: summary[k] for k in ("images", "images_used", "images_dropped", "mean_diagonal")}))
    print(f"wrote {args.output}")
    return 0
