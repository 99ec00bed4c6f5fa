"""Wilson intervals (the paper's numbers), McNemar, Wilcoxon and Bonferroni."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import bonferroni, detection_rate, mcnemar_paired, wilcoxon_paired, wilson_interval
from nnunet_swin.evaluation.reports import format_rate


@pytest.mark.parametrize("k, n, text", [(224, 247, "90.7% [86.4\u201393.7]"), (219, 247, "88.7% [84.1\u201392.0]"),
                                        (213, 247, "86.2% [81.4\u201390.0]"), (194, 247, "78.5% [73.0\u201383.2]")])
def test_wilson_reproduces_the_paper(k, n, text):
    flags = np.r_[np.ones(k), np.zeros(n - k)]
    rate = detection_rate(flags)
    assert format_rate(rate).startswith(text)
    assert (rate["detected"], rate["n"]) == (k, n)


def test_wilson_values_and_edges():
    low, high = wilson_interval(224, 247)
    assert low == pytest.approx(0.86424, abs=1e-4) and high == pytest.approx(0.93713, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(UserError):
        wilson_interval(5, 4)


def test_detection_rate_ignores_cases_without_reference():
    rate = detection_rate([1, 0, np.nan, 1, np.nan])
    assert (rate["detected"], rate["n"]) == (2, 3)
    assert rate["rate"] == pytest.approx(2 / 3)


def test_mcnemar_exact_matches_reference_example():
    # 247 paired cases: 215 both, 9 only A, 4 only B, 19 neither -> exact p = 0.2668
    a = np.r_[np.ones(215), np.ones(9), np.zeros(4), np.zeros(19)]
    b = np.r_[np.ones(215), np.zeros(9), np.ones(4), np.zeros(19)]
    out = mcnemar_paired(a, b)
    assert out["p"] == pytest.approx(0.2668, abs=1e-4)
    assert (out["only_a"], out["only_b"], out["n"]) == (9, 4, 247)
    assert out["difference_pp"] == pytest.approx(100 * (219 - 224) / 247)
    assert mcnemar_paired([1, 0, 1], [1, 0, 1])["p"] == 1.0  # no discordant pair


def test_wilcoxon_paired():
    rng = np.random.default_rng(0)
    a = rng.random(40)
    out = wilcoxon_paired(a, a + 0.1 + 0.01 * rng.random(40))
    assert out["n"] == 40 and out["p"] < 1e-6 and out["median_difference"] == pytest.approx(0.105, abs=0.01)
    assert wilcoxon_paired(a, a)["p"] == 1.0
    assert math.isnan(wilcoxon_paired([], [])["p"])
    assert wilcoxon_paired([0.1, np.nan, 0.3], [0.2, 0.5, 0.1])["n"] == 2


def test_bonferroni():
    assert bonferroni([0.004, 0.03, 0.2, 0.011]) == pytest.approx([0.016, 0.12, 0.8, 0.044])
    out = bonferroni([0.01, np.nan, 0.6])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == 1.0
