"""mIoU / mDice / mAcc: hand-computed values, a confusion matrix from scikit-learn, and the NaN policy."""
import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from nnunet_swin.evaluation.multiclass import add_multiclass_columns, class_scores, mean_scores


def test_hand_computed_example():
    ref = np.array([0, 1, 1, 1, 2, 2, 0, 0])
    pred = np.array([0, 1, 1, 2, 2, 0, 0, 1])
    s = class_scores(pred, ref, [1, 2])
    # class 1: TP 2, FP 1 (index 7), FN 1 (index 3); class 2: TP 1, FP 1 (index 3), FN 1 (index 5)
    assert s[1] == pytest.approx({"iou": 2 / 4, "dice": 4 / 6, "accuracy": 2 / 3})
    assert s[2] == pytest.approx({"iou": 1 / 3, "dice": 2 / 4, "accuracy": 1 / 2})
    assert mean_scores(s) == pytest.approx({"mIoU": (0.5 + 1 / 3) / 2, "mDice": (2 / 3 + 0.5) / 2,
                                            "mAcc": (2 / 3 + 0.5) / 2})


def test_against_a_scikit_learn_confusion_matrix():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 5, (12, 10, 9))
    pred = np.where(rng.random(ref.shape) < 0.7, ref, rng.integers(0, 5, ref.shape))
    cm = confusion_matrix(ref.ravel(), pred.ravel(), labels=range(5))  # rows: reference, columns: prediction
    s = class_scores(pred, ref, range(1, 5))
    for c in range(1, 5):
        tp, fn, fp = cm[c, c], cm[c].sum() - cm[c, c], cm[:, c].sum() - cm[c, c]
        assert s[c]["iou"] == pytest.approx(tp / (tp + fp + fn))
        assert s[c]["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert s[c]["accuracy"] == pytest.approx(tp / (tp + fn))


def test_absent_classes_are_nan_and_left_out():
    ref = np.array([0, 1, 1, 0])
    pred = np.array([0, 1, 1, 3])
    s = class_scores(pred, ref, [1, 2, 3])
    assert all(math.isnan(v) for v in s[2].values())                    # absent in both
    assert s[3]["iou"] == 0 and s[3]["dice"] == 0 and math.isnan(s[3]["accuracy"])  # predicted, not in reference
    assert mean_scores(s) == pytest.approx({"mIoU": 0.5, "mDice": 0.5, "mAcc": 1.0})
    assert all(math.isnan(v) for v in mean_scores(class_scores(ref * 0, ref * 0, [1])).values())


def test_columns_only_for_two_or_more_labels_and_the_ignore_label():
    ref = np.array([0, 1, 2, 9, 9])
    pred = np.array([0, 1, 2, 1, 2])
    rows = [{"label": "1"}, {"label": "2"}]
    add_multiclass_columns(rows, pred, ref, [1, 2], ignore_label=9)
    assert rows[0]["iou"] == 1.0 and rows[1]["accuracy"] == 1.0 and rows[0]["mIoU"] == rows[1]["mIoU"] == 1.0
    binary = [{"label": "1"}]
    add_multiclass_columns(binary, pred, ref, [1])
    assert binary == [{"label": "1"}]


def test_compare_reports_mean_scores_with_paired_tests():
    import pandas as pd
    from nnunet_swin.evaluation.comparison import compare_tables

    def table(shift):
        rows = []
        for i in range(8):
            for label in (1, 2):
                rows.append({"case_id": f"c{i}", "label": str(label), "dice": 0.8, "surface_dice": 0.7,
                             "volume_ratio": 1.0, "detected": 1.0, "ref_empty": False, "pred_empty": False,
                             "iou": 0.6, "accuracy": 0.9, "mIoU": 0.5 + shift + 0.01 * i, "mDice": 0.6 + shift,
                             "mAcc": 0.7})
        return pd.DataFrame(rows)

    result = compare_tables({"A": table(0.0), "B": table(0.1)})
    mc = result.multiclass
    summary = mc[(mc["kind"] == "summary") & (mc["score"] == "mIoU")].set_index("model")
    assert summary.loc["A", "median"] == pytest.approx(0.535) and summary.loc["B", "median"] == pytest.approx(0.635)
    test = mc[(mc["kind"] == "test") & (mc["score"] == "mIoU")].iloc[0]
    assert test["n"] == 8 and test["p_bonferroni"] < 0.05
    assert "Multi-class scores" in result.markdown and "mIoU" in result.markdown
