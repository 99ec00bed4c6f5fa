"""Per-case metrics of one label: Dice, surface Dice, volume ratio, detection, optional HD95, padding fraction.

Edge-case policy (stated once, used everywhere):

| case                       | dice | surface_dice | volume_ratio | detected | hd95        |
|----------------------------|------|--------------|--------------|----------|-------------|
| both masks empty           | NaN  | NaN          | NaN          | NaN      | NaN         |
| reference empty, pred not  | 0    | 0            | NaN          | NaN      | 373.13 (cap)|
| reference present, missed  | 0    | 0            | 0            | 0        | 373.13 (cap)|

NaN values are left out of medians; detection rates count only cases with a non-empty reference.
"""
from __future__ import annotations

import math

import numpy as np

from nnunet_swin.evaluation.detection import is_detected
from nnunet_swin.evaluation.hausdorff import MISSED_HAUSDORFF_MM, hausdorff_distance
from nnunet_swin.evaluation.multiclass import dice_from_counts, overlap_counts
from nnunet_swin.evaluation.surface_dice import surface_dice
from nnunet_swin.geometry.padding import case_padding_fraction

# Columns of a per-case row, in order (besides case_id / label / file names added by the folder layer).
METRIC_COLUMNS = ("dice", "surface_dice", "volume_ratio", "detected", "hd95", "padding_fraction")


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """2|P n R| / (|P| + |R|) of two boolean masks; NaN when both are empty."""
    return dice_from_counts(*overlap_counts(pred, ref))


def volume_ratio(pred_voxels: int, ref_voxels: int) -> float:
    """VR = V_pred / V_ref (the spacing cancels); 0 for a missed case, NaN when the reference is empty."""
    return pred_voxels / ref_voxels if ref_voxels else float("nan")


def measure_case(pred: np.ndarray, ref: np.ndarray, spacing, *, tolerance_mm: float = 2.0,
                 detection_threshold: float = 0.1, hd95: bool = False, crop_depth: int | None = None,
                 crop_spacing_z: float | None = None, transpose_forward=(0, 1, 2)) -> dict:
    """All metrics of one label of one case.

    pred, ref: boolean (Z, Y, X) masks; spacing: mm in the same order. ``crop_depth`` (slices at
    ``crop_spacing_z`` mm, native slices if None, along raw axis ``transpose_forward[0]`` as in the plans) adds the
    case's padding fraction. Returns a dict with ``METRIC_COLUMNS`` plus ``volume_pred_mm3``, ``volume_ref_mm3``,
    ``ref_empty``, ``pred_empty``.
    """
    n_pred, n_ref = int(np.count_nonzero(pred)), int(np.count_nonzero(ref))
    voxel_mm3 = float(np.prod(spacing))
    case_dice = dice(pred, ref)
    if hd95:
        hd = hausdorff_distance(pred, ref, spacing, 95.0)
        hd = MISSED_HAUSDORFF_MM if math.isinf(hd) else hd
    else:
        hd = float("nan")
    pf = float("nan")
    if crop_depth is not None:
        pf = case_padding_fraction(ref.shape, spacing, crop_depth, crop_spacing_z, transpose_forward)
    return {
        "dice": case_dice,
        "surface_dice": surface_dice(pred, ref, spacing, tolerance_mm),
        "volume_ratio": volume_ratio(n_pred, n_ref),
        "detected": is_detected(case_dice, n_ref, detection_threshold),
        "hd95": hd,
        "padding_fraction": pf,
        "volume_pred_mm3": n_pred * voxel_mm3,
        "volume_ref_mm3": n_ref * voxel_mm3,
        "ref_empty": n_ref == 0,
        "pred_empty": n_pred == 0,
    }
