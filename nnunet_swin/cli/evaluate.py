"""`nnunet-swin evaluate`: surface Dice, Dice, volume ratio and detection for one nnU-Net prediction folder."""
from __future__ import annotations

import argparse

from nnunet_swin.cli import options


def _label(text: str):
    """``1`` -> 1, ``1,2`` -> (1, 2) (a region)."""
    parts = [int(p) for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else tuple(parts)


def common_parents() -> list[argparse.ArgumentParser]:
    """The shared vocabulary `evaluate` and `compare` take (file ending, tumour labels, processes, --quiet)."""
    from nnunetv2.configuration import default_num_processes

    return [options.file_ending(None, "dataset.json's, or inferred from the reference folder"),
            options.tumor_labels("every evaluated label; their detection, Dice >= threshold, is scored"),
            options.processes(default_num_processes), options.progress()]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `evaluate` and `compare` beyond the shared vocabulary."""
    parser.add_argument("--labels", nargs="+", type=_label, default=None,
                        help="label ids to evaluate; a region as 1,2 (default: from dataset.json, else binary 0/1)")
    parser.add_argument("--dataset-json", default=None, help="dataset.json (default: in the prediction folder or "
                        "beside the reference folder)")
    parser.add_argument("--tolerance-mm", type=float, default=2.0, help="surface Dice tolerance in mm (default 2)")
    parser.add_argument("--detection-threshold", type=float, default=0.1,
                        help="Dice at or above which a case counts as detected (default 0.1)")
    parser.add_argument("--crop-depth", type=int, default=None,
                        help="crop size along z in slices: adds each case's padding fraction (paper eq. 4)")
    parser.add_argument("--crop-spacing-z", type=float, default=None,
                        help="z spacing (mm) the crop depth refers to (default: the image's own slices)")
    parser.add_argument("--subtypes", default=None, help="CSV with columns case_id,subtype to split the summaries")
    parser.add_argument("--hd95", action="store_true", help="also compute the 95th-percentile Hausdorff distance")


def common_kwargs(args) -> dict:
    return dict(labels=args.labels, file_ending=args.file_ending, dataset_json=args.dataset_json,
                tolerance_mm=args.tolerance_mm, detection_threshold=args.detection_threshold,
                num_processes=args.num_processes, crop_depth=args.crop_depth, crop_spacing_z=args.crop_spacing_z,
                subtypes_csv=args.subtypes, hd95=args.hd95, progress=not args.quiet,
                tumor_labels=args.tumor_labels)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nnunet-swin evaluate", parents=common_parents(),
        description="Evaluate one prediction folder against references: per-case CSV, summary JSON (beside, never "
                    "replacing, nnU-Net's summary.json) and a Markdown table.")
    parser.add_argument("reference_folder", help="reference segmentations (e.g. labelsTr or gt_segmentations)")
    parser.add_argument("prediction_folder", help="predicted segmentations with the same file names")
    parser.add_argument("-o", "--output-folder", default=None, help="where to write (default: the prediction folder)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    from nnunet_swin.evaluation import evaluate_folder

    result = evaluate_folder(args.reference_folder, args.prediction_folder, args.output_folder,
                             **common_kwargs(args))
    print(result.markdown)
    print("\nwrote " + ", ".join(str(p) for p in result.files.values()))
    return 0
