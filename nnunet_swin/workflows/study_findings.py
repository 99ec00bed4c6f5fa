"""The paper's findings checked on a finished study: one row per finding and metric, each with an estimate, its
interval, the non-zero pairs, the smallest p the design can attain, p, the adjusted p and a verdict
(``evaluation.verdicts``).

Every number comes from files the study's steps wrote, recomputed here so that ``--report-only`` can regenerate them
without retraining:

- the per-case metrics of all arms (the comparisons' ``comparison_per_case.csv``, by subtype first, flat or one
  folder per family: ``study_evidence.per_case_table``), compared within the paper's pre-specified families
  (``evaluation.families.PAPER_FAMILIES``), each with its own Bonferroni and exclusion set; Hodges-Lehmann
  estimates with signed-rank intervals, McNemar with Newcombe intervals; |log VR| beside VR;
- ``adi/adi_per_scan.csv``: ADI, ACT against each cubic arm per stage (paired Wilcoxon, Bonferroni over the two cubic
  arms), and ADI / sDSC against pf (Spearman, permutation p);
- B-only on its own subtype against the other (Fisher's exact test on detection: different cases, so unpaired);
- ``study.json``'s arm costs, subtype features and the rest (``study_more_findings``: TA at the ACT crop, ACT's cost,
  the D-only gap against the B-only gap, misses by subtype, the ACT-rep negative control).

The paper's effects are put on the scale of our estimates: sDSC differences are the paper's differences of medians
(Table 2, 3 and section 3.2), detection differences in percentage points, ADI differences the paper's stage-3 means.
The demo's stage that matches the paper's stage 3 (the same token map, 8 tokens a side under the cubic crop) is found
from the cubic crop; deeper demo stages have no SMIT counterpart and are ``not comparable``.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nnunet_swin.evaluation.paired_statistics import (bonferroni, fisher_floor, min_attainable_adjusted,
                                                      spearman_permutation, wilcoxon_paired)
from nnunet_swin.evaluation.verdicts import NOT_COMPARABLE, PaperEffect, Verdict, judge
from nnunet_swin.workflows.study_evidence import (ABS_LOG_VR, CUBIC_UNMASKED, Finding, _empty, _pair_rows, _read_csv,
                                                  _row, _Sources, comparable_stage)
from nnunet_swin.workflows.study_more_findings import cost_rows, gap_rows, miss_rows, no_ta_rows, noise_rows

def _adi_rows(src: _Sources) -> list[Finding]:
    stages = src.stages()
    if not stages:
        return [_empty("ACT lowers stage-3 ADI against the cubic crop", "ADI", "ADI", "", Verdict(
            NOT_COMPARABLE, "no ADI step"))]
    target = comparable_stage(src.state)
    rows = []
    for stage in stages:
        if target is not None and stage == target:
            finding, paper_text = (f"ACT lowers ADI at the paper's stage 3 (demo stage {stage})",
                                   "SMIT 0.076 -> 0.007 (~91% lower); Swin UNETR 0.079 -> 0.010")
            effect, why = PaperEffect(-1, 0.007 - 0.076), None
        elif target is not None and stage > target:
            finding, paper_text = f"ACT against the cubic crop, ADI at demo stage {stage}", "none (no counterpart)"
            effect = PaperEffect(-1)
            why = (f"demo stage {stage} is deeper than the paper's stage 3 (demo stage {target}): a single window "
                   "with no SMIT counterpart; ACT's ADI here is window padding")
        else:
            paper_stage = f" (paper stage {stage + 3 - target})" if target is not None else ""
            finding, paper_text = (f"ACT lowers ADI at demo stage {stage}{paper_stage}",
                                   "cubic ADI rises with depth; ACT lowers it (Fig. 4A-C)")
            effect, why = PaperEffect(-1), None
        col = f"adi_s{stage}"
        tests = []
        for cubic in CUBIC_UNMASKED:
            gone = src.missing("ACT", cubic)
            have = set(src.adi.model) if "model" in src.adi else set()
            if gone or not {"ACT", cubic} <= have:
                tests.append((cubic, None, gone or Verdict(NOT_COMPARABLE, f"{cubic} or ACT not in the ADI step")))
                continue
            a = src.adi[src.adi.model == cubic].set_index("case_id")
            b = src.adi[src.adi.model == "ACT"].set_index("case_id")
            both = a.index.intersection(b.index)
            tests.append((cubic, wilcoxon_paired(a.loc[both, col], b.loc[both, col]), None))
        adjusted = bonferroni([t["p"] if t else math.nan for _, t, _ in tests], m=len(CUBIC_UNMASKED))
        for (cubic, test, missing), p_adj in zip(tests, adjusted):
            metric = f"ADI S{stage}, ACT - {cubic}"
            if test is None:
                rows.append(_empty(finding, metric, "ADI", paper_text, missing))
                continue
            floor = min_attainable_adjusted(test["min_attainable_p"], len(CUBIC_UNMASKED))
            verdict = judge(effect, test["estimate"], test["ci_low"], test["ci_high"], p_adj, floor,
                            not_comparable=why)
            rows.append(_row(finding, metric, "ADI", paper_text, test,
                             f"Wilcoxon signed-rank, Hodges-Lehmann, Bonferroni m = {len(CUBIC_UNMASKED)}", verdict,
                             p_adjusted=p_adj, floor_adjusted=floor))
    return rows


def _spearman_row(finding, metric, paper_text, effect, x, y) -> Finding:
    test = spearman_permutation(x, y)
    verdict = judge(effect, test["rho"], math.nan, math.nan, test["p"], test["min_attainable_p"]) \
        if np.isfinite(test["rho"]) else Verdict(NOT_COMPARABLE, "rho undefined (a constant variable)")
    out = _row(finding, metric, "Figure 4", paper_text, {**test, "n_eff": test["n"]},
               f"Spearman, permutation ({test['method']})", verdict, estimate_key="rho", p_adjusted=test["p"],
               floor_adjusted=test["min_attainable_p"])
    return out


def _pf_rows(src: _Sources) -> list[Finding]:
    stage = comparable_stage(src.state)
    rows = []
    for cubic in CUBIC_UNMASKED:
        gone = src.missing(cubic)
        if src.adi is None or gone or cubic not in set(src.adi.model):
            rows.append(_empty("ADI rises with the padding fraction", f"Spearman, {cubic}", "Figure 4",
                               "rho 0.897 (SMIT)", gone or Verdict(NOT_COMPARABLE, "no ADI of this arm")))
            continue
        t = src.adi[src.adi.model == cubic]
        col = f"adi_s{stage}" if stage is not None else None
        if col is None or col not in t:
            rows.append(_empty("ADI rises with the padding fraction", f"Spearman, {cubic}", "Figure 4",
                               "rho 0.897 (SMIT)", Verdict(NOT_COMPARABLE, "no stage matching the paper's stage 3")))
        else:
            rows.append(_spearman_row("ADI rises with the padding fraction", f"Spearman ADI S{stage} vs pf, {cubic}",
                                      "rho 0.897 (SMIT), 0.861 (Swin UNETR)", PaperEffect(+1, 0.897), t.pf, t[col]))
        ev = _read_csv(src.root / "evaluation" / cubic / "metrics_per_case.csv")
        if ev is not None and "surface_dice" in ev:
            merged = t.merge(ev.groupby("case_id", as_index=False).surface_dice.mean(), on="case_id")
            rows.append(_spearman_row("padding lowers surface Dice", f"Spearman sDSC vs pf, {cubic}",
                                      "rho -0.21 (SMIT), -0.223 (Swin UNETR)", PaperEffect(-1, -0.21),
                                      merged.pf, merged.surface_dice))
    return rows


def _subtype_rows(src: _Sources) -> list[Finding]:
    if src.dark is None:
        why = Verdict(NOT_COMPARABLE, "no two-subtype clustering (subtypes step)")
        return [_empty("bright-only training collapses on the dark subtype", "", "subtype", "", why)]
    dark, bright = src.dark, src.bright
    only = f"{bright}-only"
    finding = f"{only} training collapses on the dark subtype ({dark})"
    paper_text = "96.5% on B, 58.6% on D (p < 0.001)"
    gone = src.missing(only)
    own, other = (None, None) if gone else (src.rate(only, bright), src.rate(only, dark))
    rows = []
    if gone or own is None or other is None:
        rows.append(_empty(finding, f"detection (pp), own {bright} - {dark}", "subtype", paper_text,
                           gone or Verdict(NOT_COMPARABLE, "no comparison by subtype")))
    else:
        _, p = stats.fisher_exact([[own[0], own[1] - own[0]], [other[0], other[1] - other[0]]])
        drop = 100 * (own[0] / max(own[1], 1) - other[0] / max(other[1], 1))
        floor = fisher_floor(own[1], other[1])
        test = {"estimate": drop, "p": float(p), "min_attainable_p": floor, "n_eff": own[1] + other[1]}
        rows.append(_row(finding, f"detection (pp), own {bright} - {dark}", "subtype", paper_text, test,
                         f"Fisher exact ({own[0]}/{own[1]} vs {other[0]}/{other[1]}), unpaired",
                         judge(PaperEffect(+1, 96.5 - 58.6), drop, math.nan, math.nan, float(p), floor),
                         p_adjusted=float(p), floor_adjusted=floor))
    rows += _pair_rows(src, f"ACT against {only} on the dark subtype ({dark})", "subtype",
                       {"detected": ("ACT 85.7% vs B-only 58.6% on D", PaperEffect(+1, 85.7 - 58.6)),
                        "surface_dice": ("median 0.522 vs 0.506 on D", PaperEffect(+1, 0.522 - 0.506))},
                       "ACT", only, group=dark)
    return rows


VR_CLAIMS = {"volume_ratio": ("Table 2 gives VR medians, no test", None),
             ABS_LOG_VR: ("Table 2 gives VR medians, no test of closeness to 1", None)}


def paper_findings(root: Path, state: dict) -> list[Finding]:
    """Every finding row for the study in ``root`` (see the module docstring), the paper's first."""
    src = _Sources(Path(root), state)
    rows = _adi_rows(src) + _pf_rows(src)
    rows += _pair_rows(src, "ACT beats Base", "table2", {
        "surface_dice": ("SMIT 0.624 vs 0.559 (p < 0.001)", PaperEffect(+1, 0.624 - 0.559)),
        "detected": ("SMIT +4.5 pp", PaperEffect(+1, 4.5)), **VR_CLAIMS}, "ACT", "Base")
    rows += _pair_rows(src, "TA beats Base (overall)", "table2", {
        "surface_dice": ("SMIT 0.587 vs 0.559 (p = 0.003)", PaperEffect(+1, 0.587 - 0.559)),
        "detected": ("SMIT +2.5 pp (n.s.)", PaperEffect(+1, 2.5)), **VR_CLAIMS}, "TA", "Base")
    rows += _pair_rows(src, "ACT beats TA (the crop at equal augmentation)", "table2", {
        "surface_dice": ("SMIT +0.025 paired (p < 0.001)", PaperEffect(+1, 0.025)),
        "detected": ("SMIT +2.0 pp", PaperEffect(+1, 2.0)), **VR_CLAIMS}, "ACT", "TA")
    rows += no_ta_rows(src)
    rows += cost_rows(src)
    rows += _subtype_rows(src)
    rows += gap_rows(src)
    rows += miss_rows(src)
    rows += _pair_rows(src, "pretrained beats Scratch", "table3", {
        "surface_dice": ("SMIT 0.624 vs 0.618 (p < 0.001); Swin UNETR n.s.", PaperEffect(+1, 0.624 - 0.618)),
        "detected": ("SMIT +2.4 pp (n.s.)", PaperEffect(+1, 2.4))}, "ACT", "Scratch")
    for family, other, text in (("masked", "Masked", "future work"), ("negative_control", "ACT-rep", "training noise"),
                                ("baseline", "CNN", "not in the paper")):
        if other in src.done or family == "masked":
            rows += _pair_rows(src, f"{other} against ACT", family, {
                m: (text, None) for m in ("surface_dice", "dice", "detected")}, other, "ACT")
    rows += noise_rows(src)
    return rows


COLUMNS = ("finding", "metric", "family", "estimate", "ci_low", "ci_high", "n_eff", "min_attainable_p", "p",
           "p_adjusted", "verdict")


def findings_json(rows: list[Finding]) -> list[dict]:
    """``findings.json``: a list of findings; the issue's columns first, then the paper's text, the test, the
    interval's level, the unadjusted floor and the verdict's reason. ``min_attainable_p`` is the smallest adjusted p
    (the one the verdict compares with alpha); ``min_attainable_p_unadjusted`` the test's alone."""
    out = []
    for r in rows:
        d = asdict(r)
        entry = {k: d[k] for k in COLUMNS if k != "min_attainable_p"}
        entry["min_attainable_p"] = d["min_attainable_p_adjusted"]
        entry = {k: entry[k] for k in COLUMNS}
        entry.update(paper=d["paper"], ci_level=d["ci_level"], min_attainable_p_unadjusted=d["min_attainable_p"],
                     test=d["test"], reason=d["reason"], note=d["note"])
        out.append({k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in entry.items()})
    return out


def _num(x, digits=3) -> str:
    if x is None or not np.isfinite(x):
        return ""
    return f"{x:.2g}" if abs(x) < 10 ** -digits and x != 0 else f"{x:.{digits}f}"


def findings_table(rows: list[Finding]) -> pd.DataFrame:
    """The report's table: the answer first (verdict), then the paper, ours with its interval, n_eff, floors."""
    out = []
    for r in rows:
        pp = "pp" in r.metric
        fmt = (lambda x: f"{x:.0f}%") if "(%)" in r.metric else (lambda x: f"{x:+.1f}") if pp else \
            (lambda x: f"{x:+.3f}")
        ours = "" if not np.isfinite(r.estimate) else fmt(r.estimate) + (
            f" [{fmt(r.ci_low)}, {fmt(r.ci_high)}]" + (f" {100 * r.ci_level:.1f}%" if np.isfinite(r.ci_level) else "")
            if np.isfinite(r.ci_low) else "")
        out.append({"verdict": r.verdict, "finding": r.finding, "metric": r.metric, "family": r.family,
                    "paper": r.paper, "ours [CI]": ours, "n_eff": "" if r.n_eff is None else r.n_eff,
                    "smallest p (adj.)": _num(r.min_attainable_p_adjusted), "p": _num(r.p),
                    "p adj.": _num(r.p_adjusted), "why": r.reason})
    return pd.DataFrame(out)
