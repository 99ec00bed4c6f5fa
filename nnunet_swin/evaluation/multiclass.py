"""Multi-class scores of one case (the spine paper's mIoU, mDice, mAcc), from overlap counts, numpy only.

Per class c with TP, FP, FN counted on the label maps (background 0 left out by default):

    IoU_c = TP / (TP + FP + FN)      Dice_c = 2 TP / (2 TP + FP + FN)      Acc_c = TP / (TP + FN)

Acc_c is the class's pixel accuracy (recall), the usual mAcc of semantic segmentation. Undefined values are NaN and
left out of every mean, never 1 or 0: a class absent from both reference and prediction has NaN for all three; a
class predicted but absent from the reference has IoU = Dice = 0 and Acc NaN (no reference voxel to recover).
mIoU, mDice, mAcc of a case are the NaN-free means over its classes; summaries average cases.
"""
from __future__ import annotations

import numpy as np

MEAN_COLUMNS = ("mIoU", "mDice", "mAcc")


def overlap_counts(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int, int]:
    """(TP, FP, FN) of two boolean masks."""
    tp = int(np.count_nonzero(pred & ref))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(ref)) - tp


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def dice_from_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(2.0 * tp, 2 * tp + fp + fn)


def iou_from_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(float(tp), tp + fp + fn)


def accuracy_from_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(float(tp), tp + fn)


def class_scores(pred: np.ndarray, ref: np.ndarray, classes) -> dict[int, dict[str, float]]:
    """``{class: {"iou", "dice", "accuracy"}}`` of two integer label maps of the same shape."""
    out = {}
    for c in classes:
        counts = overlap_counts(pred == c, ref == c)
        out[int(c)] = {"iou": iou_from_counts(*counts), "dice": dice_from_counts(*counts),
                       "accuracy": accuracy_from_counts(*counts)}
    return out


def mean_scores(scores: dict[int, dict[str, float]]) -> dict[str, float]:
    """mIoU, mDice, mAcc: NaN-free means over the classes of :func:`class_scores` (NaN when none is defined)."""
    def mean(key):
        values = np.array([s[key] for s in scores.values()], dtype=float)
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")
    return {"mIoU": mean("iou"), "mDice": mean("dice"), "mAcc": mean("accuracy")}


def add_multiclass_columns(rows: list[dict], pred: np.ndarray, ref: np.ndarray, labels, ignore_label=None) -> None:
    """For two or more integer labels: add ``iou`` and ``accuracy`` to each label's row and the case's ``mIoU``,
    ``mDice``, ``mAcc`` to every row (in place). Regions and binary evaluations are left as they are. Voxels with the
    ignore label in the reference are left out."""
    classes = [label for label in (labels or ()) if isinstance(label, int)]
    if len(classes) < 2:
        return
    if ignore_label is not None:
        keep = ref != ignore_label
        pred, ref = pred[keep], ref[keep]
    scores = class_scores(pred, ref, classes)
    means = mean_scores(scores)
    for row in rows:
        own = scores.get(int(row["label"])) if str(row["label"]).lstrip("-").isdigit() else None
        row.update({"iou": own["iou"] if own else float("nan"),
                    "accuracy": own["accuracy"] if own else float("nan"), **means})
