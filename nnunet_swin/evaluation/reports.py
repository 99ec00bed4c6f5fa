"""Markdown formatting of results: tables, median [IQR], rates with their CIs, p-values.

Files are written through :mod:`nnunet_swin.io` (atomic; strict JSON).
"""
from __future__ import annotations

import math

EN_DASH = "\u2013"


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_median_iqr(stats: dict, digits: int = 3) -> str:
    """``0.559 [0.428–0.719]`` from a dict with median/q1/q3; ``n/a`` when there were no values."""
    if stats is None or stats.get("n", 0) == 0:
        return "n/a"
    return f"{stats['median']:.{digits}f} [{stats['q1']:.{digits}f}{EN_DASH}{stats['q3']:.{digits}f}]"


def format_rate(detection: dict) -> str:
    """``90.7% [86.4–93.7]`` (k/n) from :func:`nnunet_swin.evaluation.detection.detection_rate` output."""
    if detection is None or detection.get("n", 0) == 0:
        return "n/a"
    return (f"{100 * detection['rate']:.1f}% [{100 * detection['ci_low']:.1f}{EN_DASH}"
            f"{100 * detection['ci_high']:.1f}] ({detection['detected']}/{detection['n']})")


def format_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
