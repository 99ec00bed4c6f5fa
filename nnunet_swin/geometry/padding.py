"""Padding-aware crop geometry (paper section 2.4, equation 4), as pure functions on extents in voxels.

The padding fraction of a case along z is ``pf = max(1 - L / C, 0)``: L is the case's extent after resampling to the
target spacing, C the crop size. A cubic crop taken from the pretraining geometry (SMIT 128^3, Swin UNETR 96^3) pads
most thick-slice MRI volumes heavily; the anisotropic (ACT) crop picks the largest z that keeps padding rare.
"""
from __future__ import annotations

import numpy as np

from nnunet_swin.errors import UserError


def padding_fractions(extents, crop: int) -> np.ndarray:
    """pf per case (eq. 4) for extents L (voxels, any shape) and one crop size C (voxels): the one implementation,
    used by the planner, the evaluation and the analyses. A scalar extent gives a 0-d array (``float()`` it)."""
    if not crop > 0:
        raise UserError(f"crop size must be a positive number of voxels, got {crop}")
    extents = np.asarray(extents, dtype=np.float64)
    return np.maximum(1.0 - extents / float(crop), 0.0)


def resampled_shape(shape, spacing, target_spacing) -> np.ndarray:
    """Voxels per axis after resampling from ``spacing`` to ``target_spacing`` mm, nnU-Net's rounding
    (``compute_new_shape``: ``round(shape * spacing / target)``); all three in the same axis order."""
    shape, spacing, target = (np.asarray(v, dtype=np.float64) for v in (shape, spacing, target_spacing))
    return np.round(shape * spacing / target).astype(np.int64)


def case_padding_fraction(shape, spacing, crop_depth: int, target_spacing_z: float | None = None,
                          transpose_forward=(0, 1, 2)) -> float:
    """pf (eq. 4) of one image along the crop's z axis.

    shape, spacing: the image's (raw array order) size and mm spacing. The crop's z axis is the plans' first axis,
    i.e. raw axis ``transpose_forward[0]`` (our planners put the coarsest axis first). ``target_spacing_z``: the mm
    spacing the crop depth is counted at (the plans' spacing along that axis); None counts native slices.
    """
    axis = int(transpose_forward[0])
    extent = shape[axis] if target_spacing_z is None else resampled_shape([shape[axis]], [spacing[axis]],
                                                                          [target_spacing_z])[0]
    return float(padding_fractions(extent, crop_depth))


def padding_statistics(extents, crop: int) -> dict:
    """Mean, median, 75th percentile and maximum pf, and the share of cases that need any padding, for crop C."""
    pf = padding_fractions(extents, crop)
    return {
        "crop": int(crop),
        "mean_pf": round(float(pf.mean()), 4),
        "median_pf": round(float(np.median(pf)), 4),
        "p75_pf": round(float(np.percentile(pf, 75)), 4),
        "max_pf": round(float(pf.max()), 4),
        "share_padded": round(float(np.mean(pf > 0)), 4),
        "num_cases": int(pf.size),
    }


def choose_z_crop(extents, divisor: int, threshold: float = 0.05, max_crop: int | None = None) -> tuple[int, list]:
    """Largest multiple of ``divisor`` whose mean pf over the cases stays at or below ``threshold``.

    Never below ``divisor``; never above ``max_crop`` (when given). Returns the crop and the candidate table
    ``[padding_statistics(extents, C) for C = divisor, 2 divisor, ...]`` that justified it.
    """
    extents = np.asarray(extents, dtype=np.float64)
    if extents.size == 0:
        raise UserError("no training cases in the fingerprint; run fingerprint extraction on a dataset with cases")
    if not 0.0 <= threshold < 1.0:
        raise UserError(f"padding-fraction threshold must be in [0, 1), got {threshold}")
    upper = int(np.ceil(extents.max() / divisor)) * divisor
    if max_crop is not None:
        upper = min(upper, max(divisor, (max_crop // divisor) * divisor))
    candidates = [padding_statistics(extents, c) for c in range(divisor, max(upper, divisor) + 1, divisor)]
    chosen = divisor
    for row in candidates:
        if row["mean_pf"] <= threshold:
            chosen = row["crop"]
    return chosen, candidates


def choose_inplane_crop(extents_per_axis, requested: int, divisor: int) -> int:
    """The requested in-plane side, reduced only when the data are smaller: to the smallest multiple of the
    divisor that still covers the median extent of the axis, and never below two divisors (so the 1/32 bottleneck
    keeps more than one token, which the decoder's instance norm needs)."""
    if requested % divisor:
        raise UserError(f"in-plane crop {requested} is not a multiple of the backbone's size divisor {divisor}; "
                        f"use {max(divisor, requested // divisor * divisor)} or {(requested // divisor + 1) * divisor}")
    median = float(np.median(np.asarray(extents_per_axis, dtype=np.float64)))
    covering = max(2 * divisor, int(np.ceil(median / divisor)) * divisor)
    return min(requested, covering)
