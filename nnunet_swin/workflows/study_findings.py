"""The paper's directional findings, checked on a finished study: one row per finding and metric.

Every number comes from files the study's steps wrote: ``comparison/comparison_pairwise.csv`` and
``comparison_by_subtype/`` (paired Wilcoxon / exact McNemar with the Table 2 protocol, p Bonferroni-adjusted over the
model pairs of one metric), ``adi/adi_per_scan.csv`` (ADI per scan and stage, pf against each model's own patch), ``evaluation/<arm>/metrics_per_case.csv``, ``subtypes/subtypes_summary.json`` and the arms' cost
in ``study.json``. Tests added here, the paper's own choices where it names them:

- stage-3 ADI, ACT against each cubic arm: paired Wilcoxon over the test scans (``paired_statistics``);
- ADI and sDSC against pf: Spearman (scipy), as the paper's Figure 4;
- B-only on its own subtype against the other: Fisher's exact test on detection (different cases, so unpaired; the
  paper gives p < 0.001 without naming its test), next to the paired test against ACT on the dark subtype.

A verdict says ``reproduced`` when the direction is the paper's and p < 0.05 (the adjusted p where the comparison
adjusts), ``same direction, not significant``, ``opposite direction``, or ``not testable`` with the reason (an arm or
a step missing, too few cases). The Masked arm is the paper's future work: there is no paper result to reproduce, so
its rows carry the measurement without a verdict.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nnunet_swin.evaluation.paired_statistics import wilcoxon_paired

ALPHA = 0.05
CUBIC_UNMASKED = ("Base", "TA")     # the paper's cubic-input arms (Masked excludes its padding by construction)
METRIC_NAMES = {"surface_dice": "sDSC @2 mm", "dice": "Dice", "detected": "detection"}


@dataclass
class Finding:
    finding: str
    metric: str
    paper: str
    here: str
    test: str
    p: float | None
    verdict: str


def _verdict(direction: float | None, p: float | None) -> str:
    """direction > 0: the paper's direction; < 0 the opposite; 0 / None / NaN: no difference or none measured."""
    if direction is None or not np.isfinite(direction) or direction == 0:
        return "no difference" if direction == 0 else "not testable: nothing measured"
    if direction < 0:
        return "opposite direction"
    if p is not None and np.isfinite(p) and p < ALPHA:
        return "reproduced"
    return "same direction, not significant"


def _p(value) -> str:
    return "n/a" if value is None or not np.isfinite(value) else (f"{value:.3f}" if value >= 0.001 else f"{value:.1e}")


def _count(value) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return "?"


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, dtype={"case_id": str}) if path.is_file() else None


def read_json(path: Path) -> dict | None:
    """A JSON file one of the study's steps wrote, or None when it is absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class _Sources:
    def __init__(self, root: Path, state: dict):
        self.root, self.state = root, state
        self.done = {n for n, a in state.get("arms", {}).items() if a.get("status") == "done"}
        self.pairs = _read_csv(root / "comparison" / "comparison_pairwise.csv")
        self.pairs_by_subtype = _read_csv(root / "comparison_by_subtype" / "comparison_pairwise.csv")
        self.table_by_subtype = _read_csv(root / "comparison_by_subtype" / "comparison_table.csv")
        self.adi = _read_csv(root / "adi" / "adi_per_scan.csv")
        subtypes = read_json(root / "subtypes" / "subtypes_summary.json") or {}
        names = subtypes.get("names") or []
        self.bright, self.dark = (names[0], names[-1]) if len(names) == 2 else (None, None)

    def missing(self, *arms: str) -> str | None:
        gone = [a for a in arms if a not in self.done]
        return f"not testable: arm {', '.join(gone)} not finished" if gone else None

    def pair(self, metric: str, better: str, worse: str, group: str = "all") -> dict | None:
        """The paired test of ``better`` against ``worse``: gain (better - worse; percentage points for detection),
        n, test, p (Bonferroni-adjusted)."""
        table = self.pairs if group == "all" else self.pairs_by_subtype
        if table is None or not {"metric", "model_a", "model_b", "p"} <= set(table.columns):
            return None
        groups = table.group.astype(str) if "group" in table else pd.Series("all", index=table.index)
        rows = table[(groups == group) & (table.metric == metric)]
        for a, b, sign in ((worse, better, 1.0), (better, worse, -1.0)):
            hit = rows[(rows.model_a == a) & (rows.model_b == b)]
            if len(hit):
                r = hit.iloc[0].to_dict()
                gain = float(r.get("difference_pp" if metric == "detected" else "median_difference", math.nan))
                p_raw = float(r["p"])
                p_adj = float(r.get("p_bonferroni", math.nan))
                return {"gain": sign * gain if np.isfinite(gain) else math.nan, "n": _count(r.get("n")),
                        "test": str(r.get("test", "paired")), "p": p_adj if np.isfinite(p_adj) else p_raw,
                        "p_raw": p_raw}
        return None

    def rate(self, model: str, group: str) -> tuple[int, int] | None:
        t = self.table_by_subtype
        if t is None or not {"model", "group", "detection_detected", "detection_n"} <= set(t.columns):
            return None
        hit = t[(t.model == model) & (t.group.astype(str) == group)]
        return (int(hit.iloc[0].detection_detected), int(hit.iloc[0].detection_n)) if len(hit) else None

    def last_stage(self) -> int | None:
        if self.adi is None:
            return None
        stages = [int(c[len("adi_s"):]) for c in self.adi.columns if c.startswith("adi_s") and c[5:].isdigit()]
        return max(stages) if stages else None


def _pair_rows(src: _Sources, finding: str, paper: dict[str, str], better: str, worse: str,
               group: str = "all", judge: bool = True) -> list[Finding]:
    rows = []
    missing = src.missing(better, worse)
    for metric, claim in paper.items():
        name = METRIC_NAMES[metric]
        got = None if missing else src.pair(metric, better, worse, group)
        if got is None:
            rows.append(Finding(finding, name, claim, "", "", None, missing or "not testable: no paired comparison"))
            continue
        gain = f"{got['gain']:+.1f} pp" if metric == "detected" else f"{got['gain']:+.3f}"
        here = f"{better} - {worse}: {gain}"
        test = f"{got['test']}, n = {got['n']}, p = {_p(got['p_raw'])}" + \
            (f" (Bonferroni {_p(got['p'])})" if got["p"] != got["p_raw"] else "")
        verdict = _verdict(got["gain"], got["p"]) if judge else "no paper result (future work)"
        rows.append(Finding(finding, name, claim, here, test, got["p"], verdict))
    return rows


def _adi_rows(src: _Sources) -> list[Finding]:
    last = src.last_stage()
    if last is None:
        return [Finding("ACT lowers stage-3 ADI against the cubic crop", "ADI", "", "", "", None,
                        "not testable: no ADI step")]
    rows = []
    for stage in range(last + 1):
        if f"adi_s{stage}" in src.adi:
            rows += _adi_stage_rows(src, stage, last)
    return rows


def _adi_stage_rows(src: _Sources, stage: int, last: int) -> list[Finding]:
    """ACT against each cubic arm at one stage; the paper's headline is the last stage, the others its Figure 4A-C
    (cubic ADI rising with depth, lowered by ACT)."""
    finding = f"ACT lowers stage-{stage} ADI against the cubic crop"
    paper = "SMIT 0.076 -> 0.007 (~91% lower); Swin UNETR 0.079 -> 0.010" if stage == last else \
        "cubic ADI rises with depth; ACT lowers it (Fig. 4A-C)"
    col, inp = f"adi_s{stage}", f"adi_input_s{stage}"
    rows = []
    for cubic in CUBIC_UNMASKED:
        missing = src.missing("ACT", cubic)
        have = set(src.adi.model) if "model" in src.adi else set()
        if missing or not {"ACT", cubic} <= have:
            rows.append(Finding(finding, f"ADI S{stage} vs {cubic}", paper, "", "", None,
                                missing or f"not testable: {cubic} or ACT not in the ADI step"))
            continue
        a = src.adi[src.adi.model == cubic].set_index("case_id")
        b = src.adi[src.adi.model == "ACT"].set_index("case_id")
        both = a.index.intersection(b.index)
        test = wilcoxon_paired(a.loc[both, col], b.loc[both, col])
        here = (f"{cubic} {a.loc[both, col].mean():.3f} -> ACT {b.loc[both, col].mean():.3f} (of it input padding "
                f"{a.loc[both, inp].mean():.3f} -> {b.loc[both, inp].mean():.3f})") if inp in a else \
            f"{cubic} {a.loc[both, col].mean():.3f} -> ACT {b.loc[both, col].mean():.3f}"
        rows.append(Finding(finding, f"ADI S{stage} vs {cubic}", paper, here,
                            f"Wilcoxon, n = {test['n']}, p = {_p(test['p'])}", test["p"],
                            _verdict(-test["median_difference"] if test["n"] else None, test["p"])))
    return rows


def _spearman(x, y) -> tuple[float, float, int]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return math.nan, math.nan, int(x.size)
    rho, p = stats.spearmanr(x, y)
    return float(rho), float(p), int(x.size)


def _pf_rows(src: _Sources) -> list[Finding]:
    last = src.last_stage()
    rows = []
    for cubic in CUBIC_UNMASKED:
        missing = src.missing(cubic)
        if last is None or missing or cubic not in set(src.adi.model):
            reason = missing or "not testable: no ADI of this arm"
            rows.append(Finding("ADI rises with the padding fraction", f"Spearman, {cubic}",
                                "rho 0.897 (SMIT), 0.861 (Swin UNETR)", "", "", None, reason))
            continue
        t = src.adi[src.adi.model == cubic]
        # the deepest stage whose ADI varies over the scans (a stage whose tokens all mix real voxels has none)
        stage = next((k for k in range(last, -1, -1) if f"adi_s{k}" in t and t[f"adi_s{k}"].nunique() > 1), last)
        rho, p, n = _spearman(t.pf, t[f"adi_s{stage}"])
        rows.append(Finding("ADI rises with the padding fraction", f"Spearman S{stage}, {cubic}",
                            "rho 0.897 (SMIT), 0.861 (Swin UNETR)",
                            f"rho {rho:+.3f} (pf mean {t.pf.mean():.3f}, {int((t.pf > 0).sum())}/{n} padded)"
                            if np.isfinite(rho) else f"undefined (pf mean {t.pf.mean():.3f}, {n} scans)",
                            f"Spearman, n = {n}, p = {_p(p)}", p if np.isfinite(p) else None,
                            _verdict(rho if np.isfinite(rho) else None, p)))
        ev = _read_csv(src.root / "evaluation" / cubic / "metrics_per_case.csv")
        if ev is not None and "surface_dice" in ev:
            merged = t.merge(ev.groupby("case_id", as_index=False).surface_dice.mean(), on="case_id")
            rho, p, n = _spearman(merged.pf, merged.surface_dice)
            rows.append(Finding("padding lowers surface Dice", f"Spearman sDSC vs pf, {cubic}",
                                "rho -0.21 (SMIT), -0.223 (Swin UNETR)",
                                f"rho {rho:+.3f}" if np.isfinite(rho) else "undefined",
                                f"Spearman, n = {n}, p = {_p(p)}", p if np.isfinite(p) else None,
                                _verdict(-rho if np.isfinite(rho) else None, p)))
    return rows


def _subtype_rows(src: _Sources) -> list[Finding]:
    if src.dark is None:
        reason = "not testable: no two-subtype clustering (subtypes step)"
        return [Finding("TA helps the dark subtype", "", "", "", "", None, reason),
                Finding("bright-only training collapses on the dark subtype", "", "", "", "", None, reason)]
    dark, bright = src.dark, src.bright
    rows = _pair_rows(src, f"TA helps the dark subtype ({dark})",
                      {"surface_dice": "TA / ACT improved over Base, most on Cluster-D",
                       "detected": "TA / ACT improved over Base, most on Cluster-D"}, "TA", "Base", group=dark)
    only = f"{bright}-only"
    finding = f"{only} training collapses on the dark subtype ({dark})"
    missing = src.missing(only)
    own, other = (None, None) if missing else (src.rate(only, bright), src.rate(only, dark))
    if missing or own is None or other is None:
        rows.append(Finding(finding, "detection", "96.5% on B, 58.6% on D (p < 0.001)", "", "", None,
                            missing or "not testable: no comparison by subtype"))
    else:
        _, p = stats.fisher_exact([[own[0], own[1] - own[0]], [other[0], other[1] - other[0]]])
        drop = own[0] / max(own[1], 1) - other[0] / max(other[1], 1)
        rows.append(Finding(finding, f"detection, own {bright} vs {dark}", "96.5% on B, 58.6% on D (p < 0.001)",
                            f"{own[0]}/{own[1]} on {bright}, {other[0]}/{other[1]} on {dark}",
                            f"Fisher exact, p = {_p(p)}", float(p), _verdict(drop, p)))
    rows += _pair_rows(src, finding, {"detected": "D-only / full training detect more of D",
                                      "surface_dice": "D-only / full training segment D better"},
                       "ACT", only, group=dark)
    return rows


def _masked_rows(src: _Sources) -> list[Finding]:
    rows = _pair_rows(src, "Masked against ACT", {"surface_dice": "future work", "dice": "future work",
                                                  "detected": "future work"}, "Masked", "ACT", judge=False)
    arms = src.state.get("arms", {})
    masked, act = arms.get("Masked", {}).get("cost"), arms.get("ACT", {}).get("cost")
    if masked and act and masked.get("median_epoch_seconds") and act.get("median_epoch_seconds"):
        rows.append(Finding("Masked against ACT", "cost", "future work",
                            f"{masked['tokens_per_patch'] / act['tokens_per_patch']:.2f}x tokens, "
                            f"{masked['median_epoch_seconds'] / act['median_epoch_seconds']:.2f}x epoch time",
                            "measured", None, "no paper result (future work)"))
    return rows


def paper_findings(root: Path, state: dict) -> list[Finding]:
    """Every finding row for the study in ``root`` (see the module docstring)."""
    src = _Sources(Path(root), state)
    rows = _adi_rows(src) + _pf_rows(src)
    rows += _pair_rows(src, "ACT beats Base", {"surface_dice": "SMIT-ACT over SMIT-Base, p < 0.001 (Table 2)",
                                               "detected": "higher detection under ACT (Table 2)"}, "ACT", "Base")
    rows += _subtype_rows(src)
    rows += _pair_rows(src, "pretrained beats Scratch", {"surface_dice": "SMIT p < 0.001; Swin UNETR n.s. (Table 3)",
                                                         "detected": "+2.4 pp, n.s. (Table 3)"}, "ACT", "Scratch")
    return rows + _masked_rows(src)


def findings_table(rows: list[Finding]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows]).drop(columns=["p"])


def findings_json(rows: list[Finding]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(r).items()}
            for r in rows]
