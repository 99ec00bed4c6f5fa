"""The evidence the study's findings are built from: the finding row, the study folder's per-case metrics compared
within the paper's pre-specified families (``evaluation.families``), and one row per metric of a paired contrast.
``study_findings`` and ``study_more_findings`` build their rows on it."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.evaluation.comparison import DEFAULT_METRICS, DEFAULT_PENALTIES, compare_tables
from nnunet_swin.evaluation.families import PAPER_FAMILIES, families_for
from nnunet_swin.evaluation.paired_statistics import min_attainable_adjusted
from nnunet_swin.evaluation.verdicts import NOT_COMPARABLE, Verdict, judge
from nnunet_swin.workflows.study_comparisons import per_case_of_arms

ABS_LOG_VR = "abs_log_volume_ratio"   # |log VR| of the penalised VR: 0 is a perfect volume; tests closeness to 1
CUBIC_UNMASKED = ("Base", "TA")     # the paper's cubic-input arms (Masked excludes its padding by construction)
METRIC_NAMES = {"surface_dice": "sDSC @2 mm", "dice": "Dice", "detected": "detection (pp)",
                "volume_ratio": "VR (shift)", ABS_LOG_VR: "|log VR| (closeness to 1)"}
PAPER_STAGE3_TOKENS = 8             # SMIT at 128^3, patch 2: stage 3 is an 8^3 token map (2^3 windows of 4^3)
PATCH = 2
RAW_COLUMNS = ("case_id", "subtype", "label", "dice", "surface_dice", "volume_ratio", "detected", "ref_empty",
               "pred_empty")


@dataclass
class Finding:
    finding: str
    metric: str
    family: str
    paper: str
    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    n_eff: int | None
    min_attainable_p: float        # of the test alone
    min_attainable_p_adjusted: float
    p: float
    p_adjusted: float
    test: str
    verdict: str
    reason: str
    note: str = ""                 # what the row's numbers are made of, where the metric alone does not say


def _nan(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _row(finding, metric, family, paper_text, test: dict, test_name, verdict: Verdict, *, estimate_key="estimate",
         p_adjusted=None, floor_adjusted=None) -> Finding:
    return Finding(finding, metric, family, paper_text, _nan(test.get(estimate_key)), _nan(test.get("ci_low")),
                   _nan(test.get("ci_high")), _nan(test.get("ci_level")),
                   None if test.get("n_eff") is None else int(test["n_eff"]), _nan(test.get("min_attainable_p")),
                   _nan(floor_adjusted), _nan(test.get("p")), _nan(p_adjusted), test_name, verdict.verdict,
                   verdict.reason)


def _empty(finding, metric, family, paper_text, verdict: Verdict) -> Finding:
    return _row(finding, metric, family, paper_text, {}, "", verdict)


def with_abs_log_vr(cases: pd.DataFrame, penalty: float = DEFAULT_PENALTIES["volume_ratio"]) -> pd.DataFrame:
    """``cases`` with |log VR| of the penalised volume ratio (a missed case counts as VR = the penalty)."""
    if "volume_ratio" not in cases:
        return cases
    vr = cases["volume_ratio"].where(cases["detected"] != 0, penalty).astype(float)
    return cases.assign(**{ABS_LOG_VR: np.abs(np.log(vr.where(vr > 0)))})


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, dtype={"case_id": str, "subtype": str, "label": str}) if path.is_file() else None


def read_json(path: Path) -> dict | None:
    """A JSON file one of the study's steps wrote, or None when it is absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def comparable_stage(state: dict) -> int | None:
    """The demo stage whose token map under the cubic crop is the paper's stage 3 (8 tokens a side), from the
    cubic arms' patch size in ``study.json``; None when no cubic arm recorded its geometry."""
    for arm in CUBIC_UNMASKED + ("Masked",):
        size = ((state.get("arms", {}).get(arm) or {}).get("cost") or {}).get("patch_size")
        if size:
            tokens, stage = int(size[0]) // PATCH, 0
            while tokens > PAPER_STAGE3_TOKENS:
                tokens, stage = tokens // 2, stage + 1
            return stage if tokens == PAPER_STAGE3_TOKENS else None
    return None


def per_case_table(root: Path) -> pd.DataFrame | None:
    """Every compared arm's per-case rows, each arm once: the families' comparisons joined
    (``study_comparisons.per_case_of_arms``: ``comparison_by_subtype/<family>/`` first, then ``comparison/<family>/``),
    else a study's single comparison (``comparison_by_subtype/`` first, then ``comparison/``: the recorded demo)."""
    joined = per_case_of_arms(root)
    if joined is not None:
        return joined
    frames: dict[str, pd.DataFrame] = {}
    for folder in ("comparison_by_subtype", "comparison"):
        table = _read_csv(Path(root) / folder / "comparison_per_case.csv")
        if table is not None and {"model", "case_id"} <= set(table.columns):
            for model, rows in table.groupby("model", sort=False):
                frames.setdefault(model, rows)
    return pd.concat(frames.values(), ignore_index=True) if frames else None


class _Sources:
    def __init__(self, root: Path, state: dict):
        self.root, self.state = root, state
        self.done = {n for n, a in state.get("arms", {}).items() if a.get("status") == "done"}
        per_case = per_case_table(root)
        self.adi = _read_csv(root / "adi" / "adi_per_scan.csv")
        subtypes = read_json(root / "subtypes" / "subtypes_summary.json") or {}
        names = subtypes.get("names") or []
        self.bright, self.dark = (names[0], names[-1]) if len(names) == 2 else (None, None)
        self.pairs = self.table = None
        self.per_case = None       # the finished arms' raw per-case rows (model, case_id, subtype, metrics)
        if per_case is not None and "model" in per_case:
            keep = [c for c in RAW_COLUMNS if c in per_case]
            models = {m: with_abs_log_vr(rows[keep].reset_index(drop=True))
                      for m, rows in per_case.groupby("model", sort=False) if m in self.done}
            if models:
                self.per_case = pd.concat([t.assign(model=m) for m, t in models.items()], ignore_index=True)
            if len(models) >= 2 and families_for(models):
                result = compare_tables(models, families=families_for(models),
                                        metrics=tuple(DEFAULT_METRICS) + (ABS_LOG_VR,))
                self.pairs, self.table = result.pairwise, result.table

    def missing(self, *arms: str) -> Verdict | None:
        gone = [a for a in arms if a not in self.done]
        return Verdict(NOT_COMPARABLE, f"arm {', '.join(gone)} not run") if gone else None

    def pair(self, family: str, metric: str, first: str, second: str, group: str = "all") -> tuple[dict, int] | None:
        """The family's test of ``first - second`` (signs flipped when the table holds second - first)."""
        if self.pairs is None:
            return None
        rows = self.pairs[(self.pairs.family == family) & (self.pairs.group.astype(str) == group)
                          & (self.pairs.metric == metric)]
        for a, b, sign in ((second, first, 1.0), (first, second, -1.0)):
            hit = rows[(rows.model_a == a) & (rows.model_b == b)]
            if len(hit):
                r = hit.iloc[0].to_dict()
                key = "difference_pp" if metric == "detected" else "estimate"
                low, high = sign * _nan(r["ci_low"]), sign * _nan(r["ci_high"])
                r.update({key: sign * _nan(r[key]), "ci_low": min(low, high), "ci_high": max(low, high)})
                return r, int(r["m"])
        return None

    def rate(self, model: str, group: str) -> tuple[int, int] | None:
        t = self.table
        if t is None:
            return None
        hit = t[(t.model == model) & (t.group.astype(str) == group) & (t.family == "subtype")]
        return (int(hit.iloc[0].detection_detected), int(hit.iloc[0].detection_n)) if len(hit) else None

    def stages(self) -> list[int]:
        if self.adi is None:
            return []
        return sorted(int(c[len("adi_s"):]) for c in self.adi.columns if c.startswith("adi_s") and c[5:].isdigit())


def _pair_rows(src: _Sources, finding: str, family: str, claims: dict, first: str, second: str,
               group: str = "all") -> list[Finding]:
    """claims: metric -> (paper text, PaperEffect or None) for the contrast ``first - second``."""
    rows = []
    for metric, (paper_text, effect) in claims.items():
        name = METRIC_NAMES[metric]
        gone = src.missing(first, second)
        got = None if gone else src.pair(family, metric, first, second, group)
        if got is None:
            rows.append(_empty(finding, name, family, paper_text,
                               gone or Verdict(NOT_COMPARABLE, "no per-case metrics of both arms")))
            continue
        test, m = got
        key = "difference_pp" if metric == "detected" else "estimate"
        floor = min_attainable_adjusted(_nan(test["min_attainable_p"]), m)
        verdict = judge(effect, _nan(test[key]), test["ci_low"], test["ci_high"], _nan(test["p_bonferroni"]), floor)
        test_name = ("McNemar exact, b/c = " + f"{int(test['b'])}/{int(test['c'])}" if metric == "detected"
                     else "Wilcoxon signed-rank, Hodges-Lehmann") + f", Bonferroni m = {m}"
        rows.append(_row(finding, name, family, paper_text, test, test_name, verdict, estimate_key=key,
                         p_adjusted=test["p_bonferroni"], floor_adjusted=floor))
    return rows


def family_of(*arms: str) -> str | None:
    """The pre-specified family (``evaluation.families.PAPER_FAMILIES``) that holds all of ``arms``: the smallest
    one, so that a contrast is adjusted within its own question."""
    holding = [f for f in PAPER_FAMILIES.values() if set(arms) <= set(f.arms)]
    return min(holding, key=lambda f: len(f.arms)).name if holding else None
