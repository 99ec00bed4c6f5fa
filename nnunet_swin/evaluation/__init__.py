"""Evaluation as in the paper: surface Dice at a tolerance, detection with Wilson CIs, volume ratio, paired tests.

Pure numpy/scipy functions on (Z, Y, X) masks with spacing in the same order, then a thin file layer on nnU-Net's
folder layout. Imports no torch.
"""
from nnunet_swin.evaluation.case_metrics import dice, measure_case, volume_ratio
from nnunet_swin.evaluation.comparison import ComparisonResult, compare_folders, compare_tables
from nnunet_swin.evaluation.detection import detection_rate, wilson_interval
from nnunet_swin.evaluation.folder_evaluation import EvaluationResult, evaluate_cases, evaluate_folder
from nnunet_swin.evaluation.hausdorff import hausdorff_distance
from nnunet_swin.evaluation.paired_statistics import (bonferroni, hodges_lehmann, mcnemar_paired, spearman_permutation,
                                                      wilcoxon_paired)
from nnunet_swin.evaluation.surface_dice import surface_dice, surface_distances, surfel_area_table

__all__ = [
    "ComparisonResult", "EvaluationResult", "bonferroni", "compare_folders", "compare_tables", "detection_rate",
    "dice", "evaluate_cases", "evaluate_folder", "hausdorff_distance", "hodges_lehmann", "mcnemar_paired", "measure_case",
    "spearman_permutation", "surface_dice", "surface_distances", "surfel_area_table", "volume_ratio",
    "wilcoxon_paired", "wilson_interval",
]
