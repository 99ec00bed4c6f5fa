"""Summaries of per-case metrics: median [IQR] per metric and detection rate with its Wilson 95% CI.

Works on the long per-case table (one row per case and label, columns as in
:mod:`nnunet_swin.evaluation.case_metrics`), overall and split by the optional ``subtype`` column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from nnunet_swin.evaluation.detection import detection_rate
from nnunet_swin.evaluation.reports import format_median_iqr, format_rate, markdown_table

# metric column -> label used in tables
METRIC_NAMES = {"surface_dice": "sDSC", "dice": "Dice", "volume_ratio": "VR", "hd95": "HD95 (mm)",
                "padding_fraction": "pf", "iou": "IoU", "accuracy": "Acc", "mIoU": "mIoU", "mDice": "mDice",
                "mAcc": "mAcc"}
ALL_CASES = "all"


def median_iqr(values) -> dict:
    """Median, quartiles (linear interpolation), mean and count of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"median": None, "q1": None, "q3": None, "mean": None, "n": 0}
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "mean": float(v.mean()), "n": int(v.size)}


def summarize_group(cases: pd.DataFrame, metrics) -> dict:
    """Summary of one label's cases: counts, detection (Wilson CI), median [IQR] of each metric."""
    return {
        "n_cases": int(len(cases)),
        "n_positive": int((~cases["ref_empty"].astype(bool)).sum()),
        "n_false_positive_cases": int((cases["ref_empty"].astype(bool) & ~cases["pred_empty"].astype(bool)).sum()),
        "detection": detection_rate(cases["detected"]),
        "metrics": {m: median_iqr(cases[m]) for m in metrics},
    }


def groups(cases: pd.DataFrame):
    """(name, rows) for all cases and then each subtype (if a ``subtype`` column holds any value)."""
    yield ALL_CASES, cases
    if "subtype" in cases.columns:
        for subtype, rows in cases.dropna(subset=["subtype"]).groupby("subtype", sort=True):
            yield str(subtype), rows


def summarize_per_case(per_case: pd.DataFrame, metrics) -> dict:
    """``{label: {"all": summary, "by_subtype": {subtype: summary}}}`` for a long per-case table."""
    out = {}
    for label, rows in per_case.groupby("label", sort=False):
        entry = {ALL_CASES: None, "by_subtype": {}}
        for name, group in groups(rows):
            if name == ALL_CASES:
                entry[ALL_CASES] = summarize_group(group, metrics)
            else:
                entry["by_subtype"][name] = summarize_group(group, metrics)
        out[str(label)] = entry
    return out


def summary_markdown(summary: dict, metrics, title: str) -> str:
    """One Markdown table per label: rows all cases / each subtype; median [IQR] and detection rate."""
    parts = [f"# {title}", ""]
    for label, entry in summary.items():
        header = ["Cases", "N", "N with reference"] + [METRIC_NAMES.get(m, m) for m in metrics] + ["Det. rate [95% CI]"]
        rows = []
        named = [(ALL_CASES, entry[ALL_CASES])] + [(f"subtype {k}", v) for k, v in entry["by_subtype"].items()]
        for name, s in named:
            rows.append([name, s["n_cases"], s["n_positive"]]
                        + [format_median_iqr(s["metrics"][m]) for m in metrics] + [format_rate(s["detection"])])
        parts += [f"## Label {label}", "", markdown_table(header, rows), ""]
        if entry[ALL_CASES]["n_false_positive_cases"]:
            parts += [f"False-positive cases (empty reference, non-empty prediction): "
                      f"{entry[ALL_CASES]['n_false_positive_cases']}", ""]
    return "\n".join(parts)


def multiclass_summary(per_case: pd.DataFrame) -> dict:
    """mIoU / mDice / mAcc over cases (each case once) and per class: mean, SD and median [IQR]; background and
    undefined (NaN) classes left out (see :mod:`nnunet_swin.evaluation.multiclass`)."""
    cases = per_case.drop_duplicates("case_id")

    def stats(values) -> dict:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        return {**median_iqr(v), "sd": float(v.std(ddof=1)) if v.size > 1 else None}

    return {"background": "excluded", "means_over_cases": {m: stats(cases[m]) for m in ("mIoU", "mDice", "mAcc")},
            "per_class": {str(label): {"iou": stats(rows["iou"]), "dice": stats(rows["dice"]),
                                       "accuracy": stats(rows["accuracy"])}
                          for label, rows in per_case.groupby("label", sort=False)}}


def multiclass_markdown(summary: dict) -> str:
    """The mean-over-classes scores (mean +- SD over cases) and the per-class means, as Markdown."""
    def cell(s):
        return "n/a" if s["n"] == 0 else f"{s['mean']:.3f} +- {s['sd'] or 0:.3f}"
    means = summary["means_over_cases"]
    rows = [[name, cell(means[name])] for name in ("mIoU", "mDice", "mAcc")]
    per_class = [[label, cell(s["iou"]), cell(s["dice"]), cell(s["accuracy"])] for label, s in summary["per_class"].items()]
    return "\n".join(["## Multi-class scores (background excluded; mean +- SD over cases)", "",
                      markdown_table(["Score", "Mean"], rows), "",
                      markdown_table(["Class", "IoU", "Dice", "Acc"], per_class), ""])
