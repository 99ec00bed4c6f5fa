"""Paired tests between models evaluated on the same cases (the paper's section 2.8).

- Continuous metrics: Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, ``zero_method='wilcox'``:
  pairs with equal values are dropped; ``method='auto'``), Bonferroni-corrected over all pairwise comparisons of
  one metric (``statsmodels`` ``multipletests``).
- Detection: difference in percentage points with the exact McNemar test on the discordant pairs.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests


def wilcoxon_paired(a, b) -> dict:
    """Wilcoxon signed-rank test of b - a on paired finite values: n, median/mean difference, statistic, p.

    No non-zero difference -> p = 1; no pairs -> p = NaN.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = b - a
    out = {"n": int(diff.size), "median_difference": float(np.median(diff)) if diff.size else math.nan,
           "mean_difference": float(diff.mean()) if diff.size else math.nan, "statistic": math.nan, "p": math.nan}
    if diff.size == 0:
        return out
    if not np.any(diff != 0):
        out["p"] = 1.0
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.wilcoxon(b, a, zero_method="wilcox", alternative="two-sided", method="auto")
    out["statistic"], out["p"] = float(test.statistic), float(test.pvalue)
    return out


def mcnemar_paired(detected_a, detected_b) -> dict:
    """Exact McNemar test of paired 0/1 detection flags: difference (b - a) in percentage points and p.

    ``only_a`` / ``only_b`` are the discordant counts; no discordant pair -> p = 1.
    """
    a = np.asarray(detected_a, dtype=float)
    b = np.asarray(detected_b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep].astype(bool), b[keep].astype(bool)
    n = int(a.size)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    both, neither = int((a & b).sum()), int((~a & ~b).sum())
    out = {"n": n, "only_a": only_a, "only_b": only_b,
           "difference_pp": 100.0 * (b.mean() - a.mean()) if n else math.nan, "p": math.nan}
    if n == 0:
        return out
    if only_a + only_b == 0:
        out["p"] = 1.0
        return out
    out["p"] = float(mcnemar([[both, only_a], [only_b, neither]], exact=True).pvalue)
    return out


def bonferroni(p_values) -> list[float]:
    """Bonferroni-adjusted p values, min(1, m p); NaNs stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method="bonferroni")[1]
    return out.tolist()


def model_pairs(models) -> list[tuple[str, str]]:
    """All unordered pairs in the given order: (A, B), (A, C), (B, C), ..."""
    return list(itertools.combinations(models, 2))
