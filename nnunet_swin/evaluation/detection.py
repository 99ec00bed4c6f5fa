"""Detection: a case counts as detected when Dice >= a threshold (0.1 in the paper); rates with Wilson intervals.

Only cases whose reference is non-empty enter the denominator; empty-reference cases with a non-empty prediction
are false-positive cases and are counted separately.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from nnunet_swin.errors import UserError


def is_detected(dice: float, ref_voxels: int, threshold: float = 0.1) -> float:
    """1.0 / 0.0 for a case with a non-empty reference; NaN (not a positive case) when the reference is empty."""
    if ref_voxels == 0:
        return float("nan")
    return float(dice >= threshold)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) of a binomial proportion, as fractions in [0, 1].

    224 of 247 -> (0.8642, 0.9371), the paper's 90.7 % [86.4-93.7]. NaNs when ``trials`` is 0.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise UserError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def detection_rate(detected, confidence: float = 0.95) -> dict:
    """Detection rate of per-case 0/1 flags (NaN flags, i.e. empty references, are left out), with its Wilson CI.

    Returns ``{"detected": k, "n": n, "rate": k/n, "ci_low": ..., "ci_high": ...}`` (fractions, not percent).
    """
    flags = np.asarray(detected, dtype=float)
    flags = flags[~np.isnan(flags)]
    k, n = int(flags.sum()), int(flags.size)
    low, high = wilson_interval(k, n, confidence)
    return {"detected": k, "n": n, "rate": k / n if n else math.nan, "ci_low": low, "ci_high": high}
