"""`nnunet-swin compare`: the paper's Table 2 protocol over several prediction folders of the same cases."""
from __future__ import annotations

import argparse

from nnunet_swin.cli.evaluate import add_common_arguments, common_kwargs, common_parents


def main(argv: list[str]) -> int:
    from nnunet_swin.evaluation.families import PAPER_FAMILIES

    parser = argparse.ArgumentParser(
        prog="nnunet-swin compare", parents=common_parents(),
        description="Compare models on the same cases: median [IQR] with bounded penalties for misses, cases missed "
                    "by all left out, Wilcoxon with Hodges-Lehmann intervals + Bonferroni within each family, "
                    "detection differences with McNemar. Writes CSV, Markdown, JSON and boxplots.")
    parser.add_argument("reference_folder", help="reference segmentations")
    parser.add_argument("prediction_folders", nargs="+", help="two or more prediction folders")
    parser.add_argument("-o", "--output-folder", required=True, help="where to write the comparison")
    parser.add_argument("--names", nargs="+", default=None, help="one name per prediction folder "
                        "(default: folder names)")
    parser.add_argument("--family", action="append", default=None, metavar="FAMILY",
                        help="a pre-specified family of comparisons with its own Bonferroni and exclusion set; "
                             f"repeatable. One of {', '.join(PAPER_FAMILIES)} (the arms are model names, see "
                             "--names), or NAME=ARM,ARM[,...]. Default: all folders form one family")
    parser.add_argument("--missed-surface-dice", type=float, default=0.1,
                        help="sDSC given to a model's missed case (default 0.1)")
    parser.add_argument("--missed-volume-ratio", type=float, default=10.0,
                        help="volume ratio given to a model's missed case (default 10)")
    parser.add_argument("--no-figures", action="store_true", help="skip the boxplots")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    from nnunet_swin.evaluation import compare_folders
    from nnunet_swin.evaluation.families import parse_family

    families = [parse_family(f) for f in args.family] if args.family else None
    result = compare_folders(args.reference_folder, args.prediction_folders, args.output_folder, names=args.names,
                             penalties={"surface_dice": args.missed_surface_dice,
                                        "volume_ratio": args.missed_volume_ratio},
                             figures=not args.no_figures, families=families, **common_kwargs(args))
    print(result.markdown)
    print("\nwrote " + ", ".join(str(p) for p in result.files.values()))
    return 0
