"""Exact signed-rank p and Hodges-Lehmann intervals, permutation Spearman, McNemar floors: known values."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from nnunet_swin.evaluation.paired_statistics import (bonferroni, fisher_floor, hodges_lehmann, mcnemar_paired,
                                                      min_attainable_adjusted, newcombe_paired_interval,
                                                      signed_rank_distribution, signed_rank_test,
                                                      spearman_permutation, wilcoxon_paired)

# Hollander & Wolfe's depression data, R's ?wilcox.test example: V = 40, two-sided p = 0.03906
X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def test_distribution_counts_every_sign_flip():
    counts = signed_rank_distribution([1, 2, 3])
    assert counts.tolist() == [1, 1, 1, 2, 1, 1, 1]           # subset sums of {1, 2, 3}
    assert signed_rank_distribution(np.arange(1, 21)).sum() == 2 ** 20


@pytest.mark.parametrize("n", [5, 8, 12, 20, 30])
def test_exact_p_equals_scipy_exact_without_ties(n):
    d = np.random.default_rng(n).normal(0.3, 1, n)
    assert signed_rank_test(d)["p"] == pytest.approx(stats.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    assert signed_rank_test(d)["method"] == "exact"


def test_r_example():
    out = wilcoxon_paired(Y, X)          # x - y
    assert out["statistic"] == 40 and out["p"] == pytest.approx(0.0390625)
    assert out["estimate"] == pytest.approx(0.46)                   # R: (pseudo)median 0.46
    # R's exact interval: qsignrank(0.025, 9) = 6 -> [W(6), W(40)] at 1 - 2 P(V <= 5) = 1 - 20/512
    d = np.subtract(X, Y)
    walsh = sorted((d[i] + d[j]) / 2 for i in range(9) for j in range(i, 9))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((walsh[5], walsh[39]))
    assert out["ci_level"] == pytest.approx(1 - 20 / 512) and out["ci_method"] == "exact"


def test_ties_get_mid_ranks_and_zeros_are_dropped():
    # |d| = 1, 1, 2 -> ranks 1.5, 1.5, 3; T+ of the 8 sign flips: 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6 (mean 3)
    assert signed_rank_test([1, 1, 2])["p"] == pytest.approx(2 / 8)
    assert signed_rank_test([-1, 1, 2])["p"] == pytest.approx(6 / 8)
    assert signed_rank_test([1, 1, -2])["p"] == 1.0
    out = wilcoxon_paired([0, 0, 0, 0, 0, 0], [0, 0, 1, 2, 3, 4])
    assert (out["n"], out["n_eff"]) == (6, 4)                        # 4 pairs entered, not 6
    assert out["p"] == pytest.approx(2 / 16) and out["min_attainable_p"] == pytest.approx(2 / 16)
    assert wilcoxon_paired([1, 2], [1, 2])["p"] == 1.0 and math.isnan(wilcoxon_paired([], [])["p"])


def test_normal_approximation_above_the_exact_limit():
    d = np.round(np.random.default_rng(3).normal(0.2, 1, 70), 1)    # ties and zeros
    out = signed_rank_test(d)
    assert out["method"] == "normal" and out["n_eff"] == int((d != 0).sum())
    ref = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="approx").pvalue
    assert out["p"] == pytest.approx(ref, rel=1e-10)
    # the same statistic by hand: tie-corrected variance, continuity correction 1/2
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    n = nz.size
    _, t = np.unique(r, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - (t ** 3 - t).sum() / 48
    z = (abs(r[nz > 0].sum() - n * (n + 1) / 4) - 0.5) / math.sqrt(var)
    assert out["p"] == pytest.approx(2 * stats.norm.sf(z))


def test_min_attainable_p_is_two_over_two_to_the_n():
    for n in (3, 4, 6, 10):
        assert signed_rank_test(np.arange(1, n + 1))["min_attainable_p"] == pytest.approx(2 / 2 ** n)
        assert signed_rank_test(np.arange(1, n + 1))["p"] == pytest.approx(2 / 2 ** n)


def test_hodges_lehmann_small_n_interval_is_the_walsh_range_at_96_9_percent():
    d = [-0.24, 0.286, -0.1, -0.05, 0.02, -0.2]
    out = hodges_lehmann(d)
    walsh = [(d[i] + d[j]) / 2 for i in range(6) for j in range(i, 6)]
    assert out["estimate"] == pytest.approx(np.median(walsh))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((min(walsh), max(walsh)))
    assert out["ci_level"] == pytest.approx(1 - 2 / 64)            # 96.875%


def test_hodges_lehmann_large_n_normal_interval():
    d = np.random.default_rng(5).normal(0.1, 1, 80)
    out = hodges_lehmann(d)
    assert out["ci_method"] == "normal" and out["ci_low"] < out["estimate"] < out["ci_high"]
    assert out["ci_level"] == pytest.approx(0.95, abs=0.003)
    # the asymptotic k agrees with the exact quantile within one rank at n = 50 (the switch)
    d50 = d[:50]
    from nnunet_swin.evaluation import paired_statistics as ps
    exact = hodges_lehmann(d50)
    ps_limit = ps.EXACT_MAX_N
    try:
        ps.EXACT_MAX_N = 0
        normal = hodges_lehmann(d50)
    finally:
        ps.EXACT_MAX_N = ps_limit
    walsh = np.sort([(d50[i] + d50[j]) / 2 for i in range(50) for j in range(i, 50)])
    k_exact, k_normal = np.searchsorted(walsh, exact["ci_low"]), np.searchsorted(walsh, normal["ci_low"])
    assert abs(k_exact - k_normal) <= 1


def test_spearman_exact_permutation():
    out = spearman_permutation([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5])
    # rho = 1 - 6*2/210; as extreme: the identity and the 5 adjacent swaps, and their 6 reversals
    assert out["rho"] == pytest.approx(1 - 12 / 210) and out["p"] == pytest.approx(12 / 720)
    assert out["min_attainable_p"] == pytest.approx(2 / 720) and out["method"] == "exact"
    assert stats.spearmanr([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5]).pvalue < out["p"] / 3   # t approx: far too small
    assert spearman_permutation(range(6), range(6))["p"] == pytest.approx(2 / 720)


def test_spearman_monte_carlo_is_seeded():
    rng = np.random.default_rng(2)
    x = rng.random(15)
    y = x + rng.normal(0, 0.3, 15)
    a, b = spearman_permutation(x, y), spearman_permutation(x, y)
    assert a == b and a["method"].startswith("monte carlo")
    assert a["min_attainable_p"] == pytest.approx(1 / 10000)
    assert a["p"] == pytest.approx(stats.spearmanr(x, y).pvalue, abs=0.01)
    assert math.isnan(spearman_permutation([1, 1, 1], [1, 2, 3])["p"])


def test_mcnemar_counts_floor_and_interval():
    a = np.r_[np.ones(215), np.ones(9), np.zeros(4), np.zeros(19)]
    b = np.r_[np.ones(215), np.zeros(9), np.ones(4), np.zeros(19)]
    out = mcnemar_paired(a, b)
    assert (out["b"], out["c"], out["n_eff"]) == (9, 4, 13)
    assert out["p"] == pytest.approx(mcnemar([[215, 9], [4, 19]], exact=True).pvalue)
    assert out["min_attainable_p"] == pytest.approx(2 * 0.5 ** 13)
    assert out["ci_low"] < out["difference_pp"] < out["ci_high"]
    assert mcnemar_paired([1, 1, 0], [1, 1, 0])["min_attainable_p"] == 1.0
    # Newcombe's interval: symmetric when the margins agree, and never wider than [-1, 1]
    low, high = newcombe_paired_interval(10, 3, 3, 4)
    assert low == pytest.approx(-high) and -1 <= low < 0 < high <= 1


def test_floors_and_bonferroni_within_a_family():
    assert fisher_floor(3, 3) == pytest.approx(0.10)
    assert min_attainable_adjusted(2 / 2 ** 6, 15) == pytest.approx(0.46875)      # the 15 pairs: 0.47
    assert min_attainable_adjusted(2 / 2 ** 6, 3) == pytest.approx(0.09375)
    assert bonferroni([0.01, 0.2], m=3) == pytest.approx([0.03, 0.6])
    assert bonferroni([0.01, np.nan], m=3)[0] == pytest.approx(0.03)


def test_spearman_exact_matches_brute_force_with_ties():
    x, y = [1, 2, 2, 3, 5], [2, 1, 3, 3, 4]
    rho = stats.spearmanr(x, y).statistic
    null = [stats.spearmanr(x, [y[i] for i in p]).statistic for p in itertools.permutations(range(5))]
    expected = np.mean(np.abs(null) >= abs(rho) - 1e-9)
    out = spearman_permutation(x, y)
    assert out["rho"] == pytest.approx(rho) and out["p"] == pytest.approx(expected)
