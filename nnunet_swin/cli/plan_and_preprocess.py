"""`nnunet-swin plan_and_preprocess`: the flags of `nnUNetv2_plan_and_preprocess`, plus our planner's options."""
from __future__ import annotations

import argparse

from nnunet_swin.cli import options
from nnunet_swin.planners.run import PlanRequest, SwinPlanOptions, plan_and_preprocess


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnunet-swin plan_and_preprocess", parents=[options.progress()],
        description="Fingerprint extraction, experiment planning and preprocessing exactly as "
                    "nnUNetv2_plan_and_preprocess, with -pl SMITPlanner / SwinUNETRPlanner available. "
                    "Stock planner names are passed through unchanged.")
    p.add_argument("-d", nargs="+", type=int, required=True, help="dataset IDs, e.g. 501")
    p.add_argument("-fpe", default="DatasetFingerprintExtractor", help="fingerprint extractor class (stock)")
    p.add_argument("-npfp", type=int, default=8, help="processes for fingerprint extraction (default 8)")
    p.add_argument("--verify_dataset_integrity", action="store_true", help="check the dataset first (recommended once)")
    p.add_argument("--no_dataset_check", action="store_true",
                   help="skip our check of every raw file before fingerprinting (it names each bad file; on by "
                        "default)")
    p.add_argument("--no_pp", action="store_true", help="only fingerprint and plan, no preprocessing")
    p.add_argument("--clean", action="store_true", help="re-extract an existing fingerprint")
    p.add_argument("-pl", default=None,
                   help="planner: SMITPlanner (default; with -like_pretrained the planner of the checkpoint's "
                        "family), SwinUNETRPlanner, or a stock nnU-Net planner name")
    p.add_argument("-gpu_memory_target", type=float, default=None, help="as in nnU-Net (unused by our planners)")
    p.add_argument("-preprocessor_name", default="DefaultPreprocessor", help="as in nnU-Net; keep the default")
    p.add_argument("-overwrite_target_spacing", nargs="+", default=None,
                   help="target spacing in the fingerprint's axis order (default: the backbone's pretraining "
                        "spacing, 1 1 1 mm)")
    p.add_argument("-overwrite_plans_name", default=None,
                   help="plans identifier (default nnUNetSMITPlans / nnUNetSwinUNETRPlans)")
    p.add_argument("-c", nargs="+", default=None,
                   help="configurations to preprocess (ours default: 3d_fullres; 3d_cubic shares its data; "
                        "stock default: 2d 3d_fullres 3d_lowres)")
    p.add_argument("-np", type=int, nargs="+", default=None, help="processes per configuration")
    p.add_argument("--verbose", action="store_true", help="print a lot of stuff")
    g = p.add_argument_group("nnunet-swin planner options (SMITPlanner / SwinUNETRPlanner only)")
    g.add_argument("-backbone", default=None,
                   help="backbone configuration: smit (default of SMITPlanner), smit96, smit_tiny; swin_unetr "
                        "(default of SwinUNETRPlanner), swin_unetr_tiny. *_tiny are reduced CPU configurations")
    g.add_argument("-inplane_patch", type=int, nargs=2, default=None, metavar=("Y", "X"),
                   help="in-plane crop of 3d_fullres (default 128 128; reduced only for smaller data)")
    g.add_argument("-pf_threshold", type=float, default=None,
                   help="largest mean z padding fraction 3d_fullres may have (default 0.05)")
    g.add_argument("-cubic_size", type=int, default=None,
                   help="side of 3d_cubic (default: the pretraining size, SMIT 128, Swin UNETR 96)")
    g.add_argument("-batch_size", type=int, default=None, help="batch size of both configurations (default 2)")
    g.add_argument("-resampling", choices=("paper", "linear", "nnunet"), default=None,
                   help="paper (default): images linear in 3D (z included), labels nearest neighbour; linear: labels "
                        "linear too; nnunet: nnU-Net's separate z (nearest neighbour along z repeats thick slices)")
    g.add_argument("-normalization", choices=("zscore", "rescale01"), default=None,
                   help="zscore (default, nnU-Net's): per-image z-score; rescale01: nnU-Net's RescaleTo01 (per-image "
                        "min-max to [0, 1], the range the CT encoder saw; the paper also clips at the 99th "
                        "percentile first, which no stock scheme can express)")
    g.add_argument("-like_pretrained", default=None, metavar="CHECKPOINT_OR_NAME",
                   help="plan like a pretrained encoder: backbone, target spacing, normalization and cubic size from "
                        "an nnunet-swin pretraining checkpoint's metadata or from a registry name (`nnunet-swin "
                        "weights list`, e.g. voco_b); -overwrite_target_spacing, -normalization and -cubic_size still "
                        "win (and are reported), a -backbone / -pl the weights do not fit is refused")
    g.add_argument("-tumor_labels", "--tumor-labels", dest="tumor_labels", type=int, nargs="+", default=None,
                   help="labels that are tumour (tumour-aware augmentation, subtypes, detection); default: all "
                        "foreground labels")
    return p


def main(argv: list[str]) -> int:
    a = build_parser().parse_args(argv)
    options = SwinPlanOptions(backbone=a.backbone, inplane_patch=tuple(a.inplane_patch) if a.inplane_patch else None,
                              pf_threshold=a.pf_threshold, cubic_size=a.cubic_size, batch_size=a.batch_size,
                              resampling=a.resampling, normalization=a.normalization,
                              tumor_labels=tuple(a.tumor_labels) if a.tumor_labels else None)
    req = PlanRequest(dataset_ids=a.d, planner=a.pl, like_pretrained=a.like_pretrained, options=options,
                      fingerprint_extractor=a.fpe,
                      num_processes_fingerprint=a.npfp, verify_dataset_integrity=a.verify_dataset_integrity,
                      no_pp=a.no_pp, clean=a.clean, gpu_memory_target=a.gpu_memory_target,
                      preprocessor_name=a.preprocessor_name, overwrite_target_spacing=a.overwrite_target_spacing,
                      overwrite_plans_name=a.overwrite_plans_name, configurations=a.c, num_processes=a.np,
                      verbose=a.verbose, progress=not a.quiet, check_dataset=not a.no_dataset_check)
    identifier = plan_and_preprocess(req)
    print(f"done: plans identifier {identifier} (train with -p {identifier})")
    return 0
