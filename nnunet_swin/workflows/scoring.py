"""Held-out scores of a prediction folder through the evaluation package (one Dice, one surface Dice)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from nnunet_swin.evaluation import evaluate_folder

METRIC_SET = "surface Dice @2 mm, Dice, volume ratio, detection"


def score_predictions(reference_folder: str | os.PathLike, prediction_folder: str | os.PathLike,
                      output_folder: str | os.PathLike, subtypes_csv: str | os.PathLike | None = None,
                      num_processes: int = 1) -> tuple[pd.DataFrame, str]:
    """Per-case table of :func:`nnunet_swin.evaluation.evaluate_folder` (its CSV / JSON / Markdown are written into
    ``output_folder``) and the name of the metric set."""
    result = evaluate_folder(reference_folder, prediction_folder, output_folder, subtypes_csv=subtypes_csv,
                             num_processes=num_processes, progress=False)
    return result.per_case, METRIC_SET


def mean_dice(table: pd.DataFrame) -> float:
    """Mean foreground Dice over cases with a non-empty reference or prediction."""
    return float(np.nanmean(table["dice"].to_numpy(dtype=float))) if len(table) else float("nan")
