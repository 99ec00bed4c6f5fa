"""Verdicts from an estimate, its interval and the adjusted p against the paper's effect."""
from __future__ import annotations

import math

import pytest

from nnunet_swin.evaluation.paired_statistics import min_attainable_adjusted, wilcoxon_paired
from nnunet_swin.evaluation.verdicts import (CONTRADICTED, INCONCLUSIVE, NO_PAPER_RESULT, NOT_COMPARABLE, NOT_TESTABLE,
                                             REPRODUCED, PaperEffect, judge)

UP = PaperEffect(+1, 0.065)   # ACT - Base sDSC, Table 2 (0.624 - 0.559)


def test_the_issue_example_is_not_a_contradiction():
    """ACT - Base sDSC in the recorded demo: HL -0.081, exact 96.9% CI [-0.240, +0.286], Table 2 family (m = 3),
    n_eff 6: the smallest adjusted p is 3 * 2/64 = 0.094 > 0.05."""
    floor = min_attainable_adjusted(2 / 2 ** 6, 3)
    assert floor == pytest.approx(0.09375)
    v = judge(UP, -0.081, -0.240, 0.286, 1.0, floor)
    assert v.verdict == NOT_TESTABLE and "0.0938" in v.reason
    # with a design that could reach significance the same numbers are inconclusive, never "opposite direction"
    assert judge(UP, -0.081, -0.240, 0.286, 1.0, 0.001).verdict == INCONCLUSIVE


def test_reproduced_needs_the_direction_and_the_adjusted_p():
    assert judge(UP, 0.03, 0.01, 0.05, 0.01, 1e-4).verdict == REPRODUCED
    assert judge(UP, 0.03, 0.01, 0.09, 0.06, 1e-4).verdict == INCONCLUSIVE     # unadjusted CI excludes 0, adj. p not
    down = PaperEffect(-1, -0.069)                                            # ADI 0.076 -> 0.007
    assert judge(down, -0.13, -0.2, -0.1, 0.001, 1e-4).verdict == REPRODUCED   # larger than the paper's: still it


def test_contradicted_by_significance_or_by_the_interval():
    assert judge(UP, -0.05, -0.08, -0.02, 0.01, 1e-4).verdict == CONTRADICTED
    v = judge(UP, 0.01, -0.01, 0.04, 0.5, 1e-4)          # the interval lies below the paper's +0.065
    assert v.verdict == CONTRADICTED and "+0.065" in v.reason
    # direction only: contradicted when the interval is wholly on the other side of 0
    assert judge(PaperEffect(+1), -0.02, -0.05, -0.001, 0.2, 1e-4).verdict == CONTRADICTED
    assert judge(PaperEffect(+1), -0.02, -0.05, 0.001, 0.2, 1e-4).verdict == INCONCLUSIVE
    # an interval beyond the paper's effect in its direction is a larger effect, not a contradiction
    assert judge(UP, 0.2, 0.1, 0.3, 0.2, 1e-4).verdict == INCONCLUSIVE
    # a contradiction by the interval wins over "not testable": the data already rule the paper's effect out
    assert judge(UP, 0.0, -0.01, 0.02, 1.0, 0.5).verdict == CONTRADICTED


def test_no_paper_result_and_not_comparable():
    assert judge(None, 0.1, 0.0, 0.2, 0.01, 0.001).verdict == NO_PAPER_RESULT
    v = judge(UP, 0.7, 0.6, 0.8, 0.01, 0.001, not_comparable="stage 3 of the demo has no SMIT counterpart")
    assert v.verdict == NOT_COMPARABLE and "SMIT" in v.reason
    assert judge(UP, math.nan, math.nan, math.nan, math.nan, math.nan).verdict == NOT_COMPARABLE
    with pytest.raises(ValueError):
        judge(PaperEffect(0), 0.1, 0.0, 0.2, 0.01, 0.001)


def test_verdict_from_a_real_small_test():
    """Six pairs all improving by about the paper's amount: exact p 2/64 = 0.031, but Bonferroni over Table 2's
    three pairs lifts it to 0.094: the design cannot reproduce, and the interval holds the paper's effect."""
    a = [0.50, 0.55, 0.60, 0.40, 0.45, 0.70]
    b = [x + d for x, d in zip(a, (0.05, 0.06, 0.07, 0.08, 0.02, 0.09))]
    t = wilcoxon_paired(a, b)
    assert t["p"] == pytest.approx(0.03125) and t["ci_level"] == pytest.approx(0.96875)
    floor = min_attainable_adjusted(t["min_attainable_p"], 3)
    v = judge(UP, t["estimate"], t["ci_low"], t["ci_high"], min(1, 3 * t["p"]), floor)
    assert v.verdict == NOT_TESTABLE
    assert judge(UP, t["estimate"], t["ci_low"], t["ci_high"], t["p"], t["min_attainable_p"]).verdict == REPRODUCED
