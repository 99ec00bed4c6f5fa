"""The study's findings beyond the paper's Table 2 / Table 3 contrasts (``study_findings`` holds
those, ``study_evidence`` the shared machinery): TA at the ACT crop, ACT's cost, the subtype arms' gaps, misses by
subtype, and training noise.

- **TA at the ACT crop**: ACT against ACT-noTA, within the pre-specified family that holds both arms
  (``evaluation.families.PAPER_FAMILIES``), judged against the paper's TA effect at the cubic crop.
- **ACT's cost**: deterministic, no test: tokens per patch (from the plans' patch sizes) and the median epoch time
  (nnU-Net's epoch timestamps), ACT against the cubic crop at equal augmentation (TA, else Base). The paper reports 56%
  less compute; ours is ``reproduced`` within ``COST_TOLERANCE_PP`` percentage points of it, else ``contradicted``.
- **The D-only gap against the B-only gap**: each subtype arm's own-minus-other difference; their difference equals
  the difference between subtypes of the per-case sum of the two arms' values, tested by an exact (small n)
  two-sample permutation test with a bootstrap interval (different cases, so unpaired).
- **Misses by subtype**: per arm, the miss rate on the dark subtype minus the bright one (Fisher's exact test,
  Newcombe's interval), with each missed case's tumour volume and contrast (``subtypes/features_*.csv``).
- **Training noise** (the negative control): ACT-rep (the same recipe, another seed) against ACT, set against every
  other arm pair on sDSC, twice: the shift (Hodges-Lehmann) and the per-case churn (median |per-case difference|).
  The row's note says plainly that noise is as large as the arms' differences when either reaches the other pairs'
  median.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from nnunet_swin.evaluation.comparison import DEFAULT_PENALTIES
from nnunet_swin.evaluation.paired_statistics import fisher_floor
from nnunet_swin.evaluation.verdicts import (CONTRADICTED, NO_PAPER_RESULT, NOT_COMPARABLE, REPRODUCED, PaperEffect,
                                             Verdict, judge)
from nnunet_swin.workflows.study_evidence import Finding, _empty, _pair_rows, _read_csv, _row, _Sources, family_of

PAPER_COST_REDUCTION = 56.0     # % compute ACT saves against the cubic crop (the paper, SMIT)
COST_TOLERANCE_PP = 10.0        # ours reproduces it within this many percentage points (fixed before any run)
NOISE_FINDING = "training noise: ACT-rep (another seed) against ACT"
PERMUTATION_RESAMPLES = 9999
SEED = 0


def _in_study(src: _Sources, arm: str) -> bool:
    return arm in src.done or arm in src.state.get("arms", {})


# ------------------------------------------------------------------------------------------------ TA at the ACT crop

def no_ta_rows(src: _Sources) -> list[Finding]:
    """ACT against ACT-noTA; left out when the study has no ACT-noTA arm."""
    if not _in_study(src, "ACT-noTA"):
        return []
    finding = "TA helps at the ACT crop (ACT against ACT-noTA)"
    paper = "TA at the cubic crop: SMIT +0.028 (TA - Base); assumed to carry to the ACT crop"
    family = family_of("ACT", "ACT-noTA")
    if family is None:
        return [_empty(finding, "sDSC @2 mm", "", paper, Verdict(
            NOT_COMPARABLE, "no pre-specified family holds ACT and ACT-noTA (evaluation.families)"))]
    return _pair_rows(src, finding, family, {
        "surface_dice": (paper, PaperEffect(+1, 0.587 - 0.559)),
        "detected": ("TA at the cubic crop: +2.5 pp (n.s.)", PaperEffect(+1, 2.5))}, "ACT", "ACT-noTA")


# ------------------------------------------------------------------------------------------------ cost

def _deterministic(finding, metric, paper, value, verdict: Verdict, note: str) -> Finding:
    return Finding(finding, metric, "cost", paper, value, math.nan, math.nan, math.nan, None, math.nan, math.nan,
                   math.nan, math.nan, "deterministic (no test)", verdict.verdict, verdict.reason, note)


def cost_rows(src: _Sources) -> list[Finding]:
    """ACT's reduction of tokens per patch and of the median epoch time against the cubic crop (``study.json``)."""
    arms = src.state.get("arms", {})
    finding = "ACT lowers the cubic crop's compute"
    paper = f"{PAPER_COST_REDUCTION:.0f}% less compute (SMIT, 64x128x128 against 128^3)"
    if not _in_study(src, "ACT"):
        return []
    act = (arms.get("ACT") or {}).get("cost")
    cubic_name = next((a for a in ("TA", "Base") if (arms.get(a) or {}).get("cost")), None)
    if not any(_in_study(src, a) for a in ("TA", "Base")):
        return [_empty(finding, "reduction (%)", "cost", paper, Verdict(NOT_COMPARABLE, "arm TA or Base not run"))]
    if not act or cubic_name is None:
        return [_empty(finding, "reduction (%)", "cost", paper, Verdict(
            NOT_COMPARABLE, "no cost recorded for ACT and a cubic arm (TA or Base) in study.json"))]
    cubic = arms[cubic_name]["cost"]
    rows = []
    for key, metric, source in (("tokens_per_patch", "tokens per patch, reduction (%)", "the plans' patch sizes"),
                                ("median_epoch_seconds", "median epoch time, reduction (%)",
                                 "nnU-Net's epoch timestamps, one run each")):
        a, c = act.get(key), cubic.get(key)
        if not a or not c:
            rows.append(_empty(finding, metric, "cost", paper, Verdict(NOT_COMPARABLE, f"no {key} recorded")))
            continue
        reduction = 100.0 * (1.0 - float(a) / float(c))
        off = reduction - PAPER_COST_REDUCTION
        verdict = Verdict(REPRODUCED if abs(off) <= COST_TOLERANCE_PP else CONTRADICTED,
                          f"{reduction:.0f}% against the paper's {PAPER_COST_REDUCTION:.0f}% ({off:+.0f} pp; "
                          f"reproduced within {COST_TOLERANCE_PP:.0f} pp, fixed before the run)")
        unit = " s" if "seconds" in key else ""
        rows.append(_deterministic(finding, metric, paper, reduction, verdict,
                                   f"ACT {float(a):.5g}{unit} against {cubic_name} {float(c):.5g}{unit} ({source})"))
    return rows


# ------------------------------------------------------------------------------------------------ subtype arms

def _penalised(cases: pd.DataFrame, metric: str) -> pd.Series:
    if metric == "detected":
        return cases["detected"].astype(float)
    value = cases[metric].astype(float)
    return value.where(cases["detected"] != 0, DEFAULT_PENALTIES.get(metric, value))


def _two_sample(first: np.ndarray, second: np.ndarray) -> dict:
    """Difference of means (first - second), exact two-sided permutation p when all splits can be enumerated
    (Monte Carlo with a fixed seed above), a percentile bootstrap 95% interval, and the smallest attainable p (the
    same test on a perfectly separated sample of these sizes)."""
    def diff(x, y, axis=-1):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    def perm(x, y):
        return stats.permutation_test((x, y), diff, permutation_type="independent", vectorized=True,
                                      n_resamples=PERMUTATION_RESAMPLES, random_state=SEED).pvalue

    n1, n2 = len(first), len(second)
    separated = np.arange(n1 + n2, dtype=float)
    boot = stats.bootstrap((first, second), diff, vectorized=True, method="percentile", n_resamples=9999,
                           random_state=SEED)
    low, high = boot.confidence_interval
    exact = math.comb(n1 + n2, n1) <= PERMUTATION_RESAMPLES + 1
    return {"estimate": float(diff(first, second)), "ci_low": float(low), "ci_high": float(high),
            "ci_level": 0.95, "p": float(perm(first, second)), "n_eff": n1 + n2,
            "min_attainable_p": float(perm(separated[n2:], separated[:n2])),
            "method": "exact" if exact else f"Monte Carlo, {PERMUTATION_RESAMPLES} resamples"}


def gap_rows(src: _Sources) -> list[Finding]:
    """The D-only gap (own minus other subtype) against the B-only gap, on sDSC and detection."""
    if src.dark is None:
        return []
    bright_arm, dark_arm = f"{src.bright}-only", f"{src.dark}-only"
    if not (_in_study(src, bright_arm) or _in_study(src, dark_arm)):
        return []
    finding = f"{dark_arm} is more even across subtypes than {bright_arm} (gap against gap)"
    paper = "B-only 96.5% on B, 58.6% on D (gap 37.9 pp); D-only more even (section 3.2.2)"
    metrics = (("surface_dice", "sDSC @2 mm, B-only gap - D-only gap"),
               ("detected", "detection (pp), B-only gap - D-only gap"))
    gone = [a for a in (bright_arm, dark_arm) if a not in src.done]
    if gone or src.per_case is None or not {bright_arm, dark_arm} <= set(src.per_case.model):
        why = f"arm {', '.join(gone)} not run" if gone else "no per-case metrics of both subtype arms"
        return [_empty(finding, m, "subtype", paper, Verdict(NOT_COMPARABLE, why)) for _, m in metrics]
    rows = []
    wide = {a: src.per_case[src.per_case.model == a].set_index("case_id") for a in (bright_arm, dark_arm)}
    cases = wide[bright_arm].index.intersection(wide[dark_arm].index)
    subtype = wide[bright_arm].loc[cases, "subtype"].astype(str)
    for metric, name in metrics:
        scale = 100.0 if metric == "detected" else 1.0
        value = {a: scale * _penalised(wide[a].loc[cases], metric) for a in wide}
        total = value[bright_arm] + value[dark_arm]
        on_b, on_d = total[subtype == src.bright].to_numpy(), total[subtype == src.dark].to_numpy()
        if len(on_b) < 2 or len(on_d) < 2:
            rows.append(_empty(finding, name, "subtype", paper, Verdict(
                NOT_COMPARABLE, f"{len(on_b)} {src.bright} and {len(on_d)} {src.dark} test cases; 2 each needed")))
            continue
        test = _two_sample(on_b, on_d)
        gaps = {a: float(value[a][subtype == own].mean() - value[a][subtype != own].mean())
                for a, own in ((bright_arm, src.bright), (dark_arm, src.dark))}
        verdict = judge(PaperEffect(+1), test["estimate"], test["ci_low"], test["ci_high"], test["p"],
                        test["min_attainable_p"])
        out = _row(finding, name, "subtype", paper, test,
                   f"permutation, difference of means ({test['method']}), bootstrap interval; unpaired "
                   f"({len(on_b)} vs {len(on_d)})", verdict, p_adjusted=test["p"],
                   floor_adjusted=test["min_attainable_p"])
        out.note = (f"{bright_arm} gap (own - other) {gaps[bright_arm]:+.3g}, {dark_arm} gap {gaps[dark_arm]:+.3g} "
                    "(means; their difference is the estimate)")
        rows.append(out)
    return rows


def case_features(root) -> pd.DataFrame | None:
    """Tumour volume and contrast per case from the subtypes step (test split, else training cases)."""
    for name in ("features_test.csv", "features_train.csv"):
        table = _read_csv(root / "subtypes" / name)
        if table is not None and {"tumour_volume", "contrast"} <= set(table.columns):
            return table[["case_id", "tumour_volume", "contrast"]]
    return None


def miss_rows(src: _Sources) -> list[Finding]:
    """Per arm (subtype arms are in the collapse and gap rows): miss rate on the dark subtype minus the bright."""
    if src.dark is None or src.per_case is None:
        return []
    features = case_features(src.root)
    rows, clean = [], []
    for arm in dict.fromkeys(src.per_case.model):
        if arm.endswith("-only"):
            continue
        cases = src.per_case[src.per_case.model == arm]
        if not (cases.detected == 0).any():
            clean.append(arm)
            continue
        rows.append(_miss_row(src, arm, cases, features))
    if clean:
        rows.append(_empty("misses concentrate in the dark subtype", f"misses, {', '.join(clean)}", "misses",
                           "ACT detects 85.7% of D (B-only 58.6%)", Verdict(
                               NOT_COMPARABLE, "no test case missed by these arms (a ceiling: nothing to compare)")))
    return rows


def _miss_row(src: _Sources, arm: str, cases: pd.DataFrame, features) -> Finding:
    on = {s: cases[cases.subtype.astype(str) == s] for s in (src.bright, src.dark)}
    missed = {s: int((t.detected == 0).sum()) for s, t in on.items()}
    n = {s: len(t) for s, t in on.items()}
    finding = "misses concentrate in the dark subtype"
    metric = f"miss rate (pp), {src.dark} - {src.bright}, {arm}"
    paper, effect = ("ACT detects 85.7% of D (B-only 58.6%)", PaperEffect(+1)) if arm == "ACT" else \
        ("no per-subtype detection for this arm", None)
    if min(n.values()) == 0:
        return _empty(finding, metric, "misses", paper, Verdict(NOT_COMPARABLE, "a subtype has no test case"))
    _, p = stats.fisher_exact([[missed[src.dark], n[src.dark] - missed[src.dark]],
                               [missed[src.bright], n[src.bright] - missed[src.bright]]])
    low, high = confint_proportions_2indep(missed[src.dark], n[src.dark], missed[src.bright], n[src.bright],
                                           method="newcomb", compare="diff")
    estimate = 100.0 * (missed[src.dark] / n[src.dark] - missed[src.bright] / n[src.bright])
    floor = fisher_floor(n[src.dark], n[src.bright])
    test = {"estimate": estimate, "ci_low": 100 * low, "ci_high": 100 * high, "ci_level": 0.95, "p": float(p),
            "min_attainable_p": floor, "n_eff": n[src.dark] + n[src.bright]}
    verdict = judge(effect, estimate, test["ci_low"], test["ci_high"], float(p), floor)
    out = _row(finding, metric, "misses", paper, test,
               f"Fisher exact ({missed[src.dark]}/{n[src.dark]} vs {missed[src.bright]}/{n[src.bright]} missed), "
               "Newcombe interval, unpaired", verdict, p_adjusted=float(p), floor_adjusted=floor)
    out.note = _miss_note(cases[cases.detected == 0], features)
    return out


def _miss_note(missed: pd.DataFrame, features: pd.DataFrame | None) -> str:
    if missed.empty:
        return "no case missed"
    parts = []
    for r in missed.itertuples():
        text = f"{r.case_id} ({r.subtype}"
        if features is not None:
            hit = features[features.case_id == r.case_id]
            if len(hit):
                text += f", {hit.iloc[0].tumour_volume:.0f} mm3, contrast {hit.iloc[0].contrast:+.2f}"
        parts.append(text + ")")
    return "missed: " + "; ".join(parts)


# ------------------------------------------------------------------------------------------------ training noise

def arm_differences(src: _Sources, metric: str = "surface_dice") -> pd.DataFrame:
    """Every distinct arm pair's Hodges-Lehmann estimate on all cases (first family that tested it)."""
    if src.pairs is None:
        return pd.DataFrame(columns=["model_a", "model_b", "estimate"])
    rows = src.pairs[(src.pairs.metric == metric) & (src.pairs.group.astype(str) == "all")]
    rows = rows.assign(pair=[frozenset(p) for p in zip(rows.model_a, rows.model_b)])
    return rows.drop_duplicates("pair")[["family", "model_a", "model_b", "estimate", "ci_low", "ci_high"]]


def _churn(src: _Sources, first: str, second: str) -> float:
    """Median over the common cases of |sDSC first - sDSC second| (misses at the penalty): how much a case moves."""
    if src.per_case is None:
        return math.nan
    wide = {a: _penalised(src.per_case[src.per_case.model == a].set_index("case_id"), "surface_dice")
            for a in (first, second)}
    both = wide[first].index.intersection(wide[second].index)
    return float(np.median(np.abs(wide[first][both] - wide[second][both]))) if len(both) else math.nan


def noise_rows(src: _Sources) -> list[Finding]:
    """ACT-rep against ACT on sDSC, with a note that sets it against the other arm differences."""
    if not _in_study(src, "ACT-rep"):
        return []
    family = family_of("ACT", "ACT-rep")
    metric = "sDSC @2 mm, |ACT-rep - ACT| against the other arm pairs"
    paper = "none (the negative control: the same recipe, another seed)"
    gone = src.missing("ACT", "ACT-rep")
    got = None if gone or family is None else src.pair(family, "surface_dice", "ACT-rep", "ACT")
    if got is None:
        why = gone or Verdict(NOT_COMPARABLE, "no per-case metrics of ACT and ACT-rep" if family else
                              "no pre-specified family holds ACT and ACT-rep")
        return [_empty(NOISE_FINDING, metric, family or "", paper, why)]
    test, m = got
    others = arm_differences(src)
    others = others[[{a, b} != {"ACT", "ACT-rep"} for a, b in zip(others.model_a, others.model_b)]]
    shift, churn = abs(float(test["estimate"])), _churn(src, "ACT", "ACT-rep")
    head = f"ACT-rep - ACT sDSC {test['estimate']:+.3f} [{test['ci_low']:+.3f}, {test['ci_high']:+.3f}]"
    if others.empty:
        note = f"{head}; no other arm pair to set it against."
    else:
        shifts = others.estimate.abs()
        churns = pd.Series([_churn(src, a, b) for a, b in zip(others.model_a, others.model_b)]).dropna()
        large = shift >= shifts.median() or (len(churns) and churn >= churns.median())
        plain = ("training noise is as large as the differences between arms: with one run per arm, a method "
                 "difference of this size cannot be told from another seed" if large else
                 "training noise is smaller than the typical difference between arms")
        note = (f"{head}, per-case |difference| median {churn:.3f}; the other {len(shifts)} arm pairs: shift median "
                f"{shifts.median():.3f} (range {shifts.min():.3f}-{shifts.max():.3f})"
                + (f", per-case |difference| median {churns.median():.3f}" if len(churns) else "")
                + f". {plain[0].upper() + plain[1:]}.")
    out = _row(NOISE_FINDING, metric, family, paper, test, f"Wilcoxon signed-rank, Hodges-Lehmann, Bonferroni m = {m}",
               Verdict(NO_PAPER_RESULT, "the negative control: the paper ran one seed per arm"),
               p_adjusted=test["p_bonferroni"], floor_adjusted=test["min_attainable_p_bonferroni"])
    out.note = note
    return [out]
