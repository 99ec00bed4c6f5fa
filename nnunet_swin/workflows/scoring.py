"""Held-out scores of a prediction folder: the evaluation package's metrics, or plain Dice where it is missing."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd


def plain_dice_table(reference_folder: str | os.PathLike, prediction_folder: str | os.PathLike,
                     file_ending: str = ".nii.gz") -> pd.DataFrame:
    """Foreground (label > 0) Dice per case, ``case_id, dice``; both empty -> NaN."""
    import SimpleITK as sitk

    rows = []
    for ref_file in sorted(Path(reference_folder).glob(f"*{file_ending}")):
        pred_file = Path(prediction_folder) / ref_file.name
        if not pred_file.is_file():
            raise FileNotFoundError(f"no prediction {pred_file} for reference {ref_file}")
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(ref_file))) > 0
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_file))) > 0
        denom = ref.sum() + pred.sum()
        rows.append({"case_id": ref_file.name[:-len(file_ending)],
                     "dice": float(2 * (ref & pred).sum() / denom) if denom else float("nan")})
    return pd.DataFrame(rows)


def score_predictions(reference_folder: str | os.PathLike, prediction_folder: str | os.PathLike,
                      output_folder: str | os.PathLike, subtypes_csv: str | os.PathLike | None = None,
                      num_processes: int = 1) -> tuple[pd.DataFrame, str]:
    """Per-case table (at least ``case_id, dice``) and a label for the metric set used.

    Uses ``nnunet_swin.evaluation.evaluate_folder`` (surface Dice at 2 mm, Dice, volume ratio, detection; writes its
    CSV / JSON / Markdown into ``output_folder``) when it is installed, else plain Dice.
    """
    Path(output_folder).mkdir(parents=True, exist_ok=True)
    try:
        from nnunet_swin.evaluation import evaluate_folder
    except ImportError:
        table = plain_dice_table(reference_folder, prediction_folder)
        table.to_csv(Path(output_folder) / "dice_per_case.csv", index=False)
        return table, "Dice (evaluation package not available)"
    result = evaluate_folder(reference_folder, prediction_folder, output_folder, subtypes_csv=subtypes_csv,
                             num_processes=num_processes, progress=False)
    return result.per_case, "evaluation package: surface Dice @2 mm, Dice, volume ratio, detection"


def mean_dice(table: pd.DataFrame) -> float:
    """Mean foreground Dice over cases with a non-empty reference or prediction."""
    return float(np.nanmean(table["dice"].to_numpy(dtype=float))) if len(table) else float("nan")
