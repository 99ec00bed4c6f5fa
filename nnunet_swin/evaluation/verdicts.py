"""What a measured contrast says about one of the paper's findings: a verdict from the estimate, its interval and
the adjusted p, judged against the paper's direction (and size, where the paper gives one).

The verdicts, in the order they are decided:

- ``no paper result``: the paper reports nothing to compare with (e.g. its future work);
- ``not comparable``: the measurement does not answer the paper's question (a stage without a SMIT counterpart, an
  arm that was not run, nothing measured); ``reason`` says why;
- ``reproduced``: the estimate goes the paper's way and the adjusted p is below alpha;
- ``contradicted``: significant (adjusted) the other way, or the interval excludes the paper's effect: it lies wholly
  on the far side of the paper's value from the paper's direction (below +0.065 for an improvement of 0.065; for a
  finding given by direction only, wholly on the other side of 0). An interval wholly beyond the paper's value in
  the paper's direction shows a larger effect, not a contradiction;
- ``not testable at this size``: even the most extreme outcome could not have reached adjusted significance
  (the smallest attainable adjusted p is above alpha) and the interval does not exclude the paper's effect;
- ``inconclusive``: everything else: the interval holds both "no effect" (or the other direction) and the paper's
  effect.

A point estimate of the wrong sign alone is never a contradiction (the recorded demo printed "opposite direction"
for ACT - Base sDSC: HL -0.081, exact 96.9% CI [-0.240, +0.286], which holds 0 and the paper's +0.065).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable at this size"
NOT_COMPARABLE = "not comparable"
NO_PAPER_RESULT = "no paper result"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, NOT_COMPARABLE, NO_PAPER_RESULT)


@dataclass(frozen=True)
class PaperEffect:
    """The paper's finding on the scale of our estimate: ``direction`` +1 (the estimate should be positive) or -1;
    ``size`` the paper's value on that scale (signed like the direction), when the paper gives one."""

    direction: int
    size: float | None = None


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str = ""


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def judge(paper: PaperEffect | None, estimate, ci_low, ci_high, p_adjusted, min_attainable_p_adjusted, *,
          not_comparable: str | None = None, alpha: float = ALPHA) -> Verdict:
    """The verdict for one finding (see the module docstring). Pure: numbers in, a label and its reason out."""
    if paper is None:
        return Verdict(NO_PAPER_RESULT, "the paper reports no result to compare with")
    if not_comparable:
        return Verdict(NOT_COMPARABLE, not_comparable)
    if paper.direction not in (1, -1):
        raise ValueError(f"paper direction must be +1 or -1, got {paper.direction}")
    if not _finite(estimate):
        return Verdict(NOT_COMPARABLE, "nothing measured")
    d = paper.direction
    significant = _finite(p_adjusted) and p_adjusted < alpha
    if significant and estimate * d > 0:
        return Verdict(REPRODUCED, f"the paper's direction, adjusted p {p_adjusted:.3g} < {alpha}")
    if significant and estimate * d < 0:
        return Verdict(CONTRADICTED, f"significant the other way, adjusted p {p_adjusted:.3g} < {alpha}")
    target = paper.size if _finite(paper.size) else 0.0
    far_end = ci_high if d > 0 else ci_low          # the interval's end toward the paper's effect
    if _finite(far_end) and (far_end < target if d > 0 else far_end > target):
        what = f"the paper's {paper.size:+.3g}" if _finite(paper.size) else "every effect in the paper's direction"
        return Verdict(CONTRADICTED, f"the interval [{ci_low:+.3g}, {ci_high:+.3g}] excludes {what}")
    if _finite(min_attainable_p_adjusted) and min_attainable_p_adjusted > alpha:
        tail = "the interval does not exclude the paper's effect" if _finite(ci_low) else "no interval to bound it"
        return Verdict(NOT_TESTABLE, f"the smallest attainable adjusted p is {min_attainable_p_adjusted:.3g} > "
                                     f"{alpha}; {tail}")
    p_text = f"adjusted p {p_adjusted:.3g}" if _finite(p_adjusted) else "no p"
    if _finite(ci_low) and _finite(ci_high):
        return Verdict(INCONCLUSIVE, f"{p_text}; the interval [{ci_low:+.3g}, {ci_high:+.3g}] does not exclude the "
                                     "paper's effect")
    return Verdict(INCONCLUSIVE, f"{p_text}; no interval to bound the effect")
