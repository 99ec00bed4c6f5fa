"""Paired tests between models evaluated on the same cases (the paper's section 2.8), exact where the design is small.

Every test returns its p-value together with the smallest p its design can attain (``min_attainable_p``), so a
reader sees at once whether a result could have been significant at all. None of the p-values depends on the SciPy
version: the exact distributions are enumerated here, SciPy supplies only the normal and binomial tails.

- Continuous metrics: Wilcoxon signed-rank test of ``b - a`` (two-sided). Zero differences are dropped (Wilcoxon's
  convention, ``zero_method='wilcox'``): ``n`` counts the pairs with finite values, ``n_eff`` the non-zero pairs
  that enter the test. Ties get mid-ranks. Exact p from the sign-flip distribution of the sum of positive ranks
  (all 2^n_eff sign flips, counted by dynamic programming over doubled mid-ranks) up to ``EXACT_MAX_N`` non-zero
  pairs; above it the normal approximation with the tie correction of the variance and a continuity correction
  of 1/2.
- Effect size: Hodges-Lehmann estimate (median of the Walsh averages of all n differences) with the
  distribution-free confidence interval that inverts the signed-rank test (Hollander & Wolfe, section 3.2;
  R ``wilcox.test(conf.int = TRUE)``): exact quantiles of the signed-rank distribution up to ``EXACT_MAX_N``
  pairs, the normal approximation above. The achieved confidence level is reported (e.g. 96.9% at n = 6, where the
  only exact interval short of 100% is [smallest, largest] Walsh average).
- Spearman's rho with a permutation p: every pairing enumerated up to ``SPEARMAN_EXACT_MAX_N`` cases, Monte Carlo
  with a fixed seed above.
- Detection: difference in percentage points with the exact McNemar test on the discordant counts ``b`` (only A
  detected) and ``c`` (only B detected), and Newcombe's score interval for the paired difference.
- Bonferroni within a family of comparisons (``statsmodels`` ``multipletests``), and the smallest adjusted p the
  family can attain, ``min(1, m * min_attainable_p)``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

EXACT_MAX_N = 50           # exact signed-rank p and interval up to this many pairs (scipy's own exact limit)
SPEARMAN_EXACT_MAX_N = 8   # 8! = 40320 pairings; Monte Carlo above
SPEARMAN_RESAMPLES = 9999
SPEARMAN_SEED = 0
_TOL = 1e-9                # relative tolerance when comparing permuted statistics with the observed one


def _finite_pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def signed_rank_distribution(doubled_ranks) -> np.ndarray:
    """Counts of every value of the doubled sum of positive ranks over all 2^n sign flips.

    doubled_ranks: positive integers (mid-ranks times 2, so ties stay exact). Returns ``counts`` with
    ``counts[s]`` = number of sign vectors whose doubled positive-rank sum is ``s``; ``counts.sum() == 2**n``.
    """
    ranks = np.asarray(doubled_ranks, dtype=np.int64)
    counts = np.zeros(int(ranks.sum()) + 1, dtype=float)
    counts[0] = 1.0
    top = 0
    for r in ranks:
        counts[r:top + r + 1] += counts[:top + 1].copy()
        top += r
    return counts


def signed_rank_test(differences) -> dict:
    """Two-sided Wilcoxon signed-rank test that the differences are centred on 0.

    Returns n (finite differences), n_eff (non-zero ones), statistic (sum of the positive mid-ranks), p, method
    (``exact`` / ``normal`` / ``none``) and min_attainable_p (all signs alike: 2 / 2^n_eff exactly).
    """
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    nonzero = d[d != 0]
    n_eff = int(nonzero.size)
    out = {"n": int(d.size), "n_eff": n_eff, "statistic": math.nan, "p": math.nan, "method": "none",
           "min_attainable_p": math.nan}
    if d.size == 0:
        return out
    if n_eff == 0:
        out.update(p=1.0, min_attainable_p=1.0)
        return out
    ranks = stats.rankdata(np.abs(nonzero))          # mid-ranks for ties
    t_plus = float(ranks[nonzero > 0].sum())
    out["statistic"] = t_plus
    if n_eff <= EXACT_MAX_N:
        doubled = np.rint(2 * ranks).astype(np.int64)
        counts = signed_rank_distribution(doubled)
        total = counts.sum()
        centre = doubled.sum() / 2.0
        dev = np.abs(np.arange(counts.size) - centre)
        observed = abs(2 * t_plus - centre)
        p = counts[dev >= observed - 1e-9].sum() / total
        extreme = counts[dev >= dev.max() - 1e-9].sum() / total
        out.update(p=float(min(1.0, p)), method="exact", min_attainable_p=float(min(1.0, extreme)))
        return out
    mean = n_eff * (n_eff + 1) / 4.0
    _, tie_counts = np.unique(ranks, return_counts=True)
    var = n_eff * (n_eff + 1) * (2 * n_eff + 1) / 24.0 - (tie_counts ** 3 - tie_counts).sum() / 48.0

    def normal_p(t):
        excess = max(abs(t - mean) - 0.5, 0.0)
        return float(min(1.0, 2 * stats.norm.sf(excess / math.sqrt(var)))) if var > 0 else 1.0

    out.update(p=normal_p(t_plus), method="normal", min_attainable_p=normal_p(float(ranks.sum())))
    return out


def hodges_lehmann(differences, level: float = 0.95) -> dict:
    """Hodges-Lehmann estimate of the median difference with the signed-rank confidence interval.

    All n finite differences take part (zeros included: the interval inverts the test at every shift, not only at
    0). The Walsh averages (d_i + d_j) / 2, i <= j, are sorted; the interval is [W_(k), W_(M + 1 - k)] with
    M = n(n+1)/2 and k from the signed-rank distribution of V: exact up to ``EXACT_MAX_N`` pairs (k = the smallest
    q with P(V <= q) >= alpha/2, at least 1: R's ``qsignrank(alpha / 2, n)``; achieved level 1 - 2 P(V <= k - 1)),
    the normal approximation above (Hollander & Wolfe's large-sample k). Returns estimate, ci_low, ci_high,
    ci_level (achieved), ci_method.
    """
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    out = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "ci_level": math.nan, "ci_method": "none"}
    if n == 0:
        return out
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2.0)
    m = walsh.size
    out["estimate"] = float(np.median(walsh))
    alpha = 1.0 - level
    if n <= EXACT_MAX_N:
        cdf = np.cumsum(signed_rank_distribution(np.arange(1, n + 1))) / 2.0 ** n   # P(V <= v), v = 0 .. M
        k = max(int(np.searchsorted(cdf, alpha / 2 - 1e-12)), 1)
        achieved = 1.0 - 2 * cdf[k - 1]
        method = "exact"
    else:
        mean, sd = n * (n + 1) / 4.0, math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
        k = max(int(math.floor(mean - stats.norm.ppf(1 - alpha / 2) * sd)), 1)
        achieved = 1.0 - 2 * float(stats.norm.cdf((k - 0.5 - mean) / sd))
        method = "normal"
    k = min(k, (m + 1) // 2)
    out.update(ci_low=float(walsh[k - 1]), ci_high=float(walsh[m - k]), ci_level=float(achieved), ci_method=method)
    return out


def wilcoxon_paired(a, b, level: float = 0.95) -> dict:
    """Wilcoxon signed-rank test of b - a on paired finite values, with the Hodges-Lehmann estimate and interval.

    Keys: n, n_eff, median_difference, mean_difference, estimate, ci_low, ci_high, ci_level, ci_method, statistic,
    p, method, min_attainable_p. No non-zero difference -> p = 1; no pairs -> p = NaN.
    """
    a, b = _finite_pairs(a, b)
    diff = b - a
    out = {"n": int(diff.size), "n_eff": int((diff != 0).sum()),
           "median_difference": float(np.median(diff)) if diff.size else math.nan,
           "mean_difference": float(diff.mean()) if diff.size else math.nan}
    out.update(hodges_lehmann(diff, level))
    out.update(signed_rank_test(diff))
    return out


def spearman_permutation(x, y, *, seed: int = SPEARMAN_SEED, n_resamples: int = SPEARMAN_RESAMPLES) -> dict:
    """Spearman's rho with a two-sided permutation p, P(|rho*| >= |rho|) over pairings of x with y.

    Exact (every one of the n! pairings) up to ``SPEARMAN_EXACT_MAX_N`` pairs; above it ``n_resamples`` random
    pairings from ``numpy.random.default_rng(seed)`` with p = (1 + hits) / (1 + n_resamples). Returns rho, p, n,
    method and min_attainable_p (exact: the share of pairings as extreme as the most extreme one, 2/n! without
    ties; Monte Carlo: the larger of that and 1 / (1 + n_resamples)).
    """
    x, y = _finite_pairs(x, y)
    n = int(x.size)
    out = {"rho": math.nan, "p": math.nan, "n": n, "method": "none", "min_attainable_p": math.nan}
    if n < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return out
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    rho = float(rx @ ry / scale)
    if n <= SPEARMAN_EXACT_MAX_N:
        perms = np.array(list(itertools.permutations(range(n))))
        null = np.abs(ry[perms] @ rx / scale)
        p = float(np.mean(null >= abs(rho) - _TOL))
        floor = float(np.mean(null >= null.max() - _TOL))
        out.update(method="exact")
    else:
        rng = np.random.default_rng(seed)
        null = np.abs(np.array([ry[rng.permutation(n)] @ rx for _ in range(n_resamples)]) / scale)
        p = float((1 + np.sum(null >= abs(rho) - _TOL)) / (1 + n_resamples))
        floor = max(2.0 / math.factorial(n) if n < 171 else 0.0, 1.0 / (1 + n_resamples))
        out.update(method=f"monte carlo ({n_resamples}, seed {seed})")
    out.update(rho=rho, p=min(1.0, p), min_attainable_p=floor)
    return out


def newcombe_paired_interval(both: int, only_a: int, only_b: int, neither: int, level: float = 0.95):
    """Newcombe's (1998, method 10) score interval for the paired difference of proportions p_b - p_a.

    Built from the Wilson intervals of both margins and the phi correlation of the 2x2 table. (low, high), or
    NaNs for an empty table.
    """
    n = both + only_a + only_b + neither
    if n == 0:
        return math.nan, math.nan
    z = stats.norm.ppf(1 - (1 - level) / 2)

    def wilson(k):
        p = k / n
        centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)

    pa, pb = (both + only_a) / n, (both + only_b) / n
    la, ua = wilson(both + only_a)
    lb, ub = wilson(both + only_b)
    denom = math.sqrt((both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither))
    cross = both * neither - only_a * only_b
    phi = 0.0 if denom == 0 else (max(cross - n / 2, 0) if cross > 0 else cross) / denom
    diff = pb - pa
    low = diff - math.sqrt(max((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2, 0.0))
    high = diff + math.sqrt(max((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2, 0.0))
    return max(low, -1.0), min(high, 1.0)


def mcnemar_paired(detected_a, detected_b, level: float = 0.95) -> dict:
    """Exact McNemar test of paired 0/1 detection flags: the difference (b - a) in percentage points, its Newcombe
    interval (``ci_low`` / ``ci_high``, pp), and p.

    ``b`` = ``only_a`` (detected by A only) and ``c`` = ``only_b`` are the discordant counts; the exact test is the
    two-sided binomial on them, so p cannot go below ``min_attainable_p`` = min(1, 2 * 0.5^(b + c)). No discordant
    pair -> p = 1.
    """
    a, b = _finite_pairs(detected_a, detected_b)
    a, b = a.astype(bool), b.astype(bool)
    n = int(a.size)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    both, neither = int((a & b).sum()), int((~a & ~b).sum())
    low, high = newcombe_paired_interval(both, only_a, only_b, neither, level)
    out = {"n": n, "n_eff": only_a + only_b, "b": only_a, "c": only_b, "only_a": only_a, "only_b": only_b,
           "difference_pp": 100.0 * (b.mean() - a.mean()) if n else math.nan,
           "ci_low": 100.0 * low, "ci_high": 100.0 * high, "ci_level": level if n else math.nan,
           "p": math.nan, "min_attainable_p": math.nan}
    if n == 0:
        return out
    discordant = only_a + only_b
    out["min_attainable_p"] = float(min(1.0, 2 * 0.5 ** discordant))
    out["p"] = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return out


def fisher_floor(n_first: int, n_second: int) -> float:
    """The smallest two-sided p Fisher's exact test can reach with groups of these sizes (all of one group
    detected, none of the other): 0.10 for 3 vs 3."""
    if n_first == 0 or n_second == 0:
        return 1.0
    return float(stats.fisher_exact([[n_first, 0], [0, n_second]])[1])


def bonferroni(p_values, m: int | None = None) -> list[float]:
    """Bonferroni-adjusted p values, min(1, m p); NaNs stay NaN. m defaults to the number of finite p values; a
    pre-specified family passes its own m (its pairs, also those an absent arm could not fill)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method="bonferroni")[1] if m is None \
            else np.minimum(1.0, m * p[finite])
    return out.tolist()


def min_attainable_adjusted(min_attainable_p: float, m: int) -> float:
    """The smallest Bonferroni-adjusted p a family of m comparisons can attain: min(1, m * p_min)."""
    if not np.isfinite(min_attainable_p) or m < 1:
        return math.nan
    return float(min(1.0, m * min_attainable_p))


def model_pairs(models) -> list[tuple[str, str]]:
    """All unordered pairs in the given order: (A, B), (A, C), (B, C), ..."""
    return list(itertools.combinations(models, 2))
