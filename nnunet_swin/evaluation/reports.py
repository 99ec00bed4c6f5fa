"""Writing results: atomic CSV / JSON / Markdown / PNG writers and Markdown formatting helpers.

Every file is written to a temporary file in the target folder and moved into place with ``os.replace``, so a
crash never leaves a half-written file behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

EN_DASH = "\u2013"


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return _atomic_write(path, write)


def jsonable(value):
    """Nested dicts/lists with NaN/inf -> None and numpy scalars -> Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path, data: dict) -> Path:
    return write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def write_csv(path, frame: pd.DataFrame) -> Path:
    return _atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_figure(path, figure, dpi: int = 120) -> Path:
    """A matplotlib figure as PNG, written atomically (the one figure writer of the package)."""
    return _atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))


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
