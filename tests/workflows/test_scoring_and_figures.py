"""Held-out scoring through the evaluation package and the example-slice figure."""
import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_swin.workflows.figures import plot_examples
from nnunet_swin.errors import UserError
from nnunet_swin.workflows.scoring import mean_dice, score_predictions


def _write(array, path, spacing=(0.5, 0.5, 3.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def folders(tmp_path):
    ref, pred, img = (tmp_path / n for n in ("ref", "pred", "img"))
    for f in (ref, pred, img):
        f.mkdir()
    a = np.zeros((6, 20, 20), np.uint8)
    a[2:4, 5:10, 5:10] = 1
    b = np.zeros_like(a)
    b[2:4, 5:10, 5:15] = 1  # Dice = 2*50 / (50 + 100) = 2/3
    _write(a, ref / "c1.nii.gz"), _write(b, pred / "c1.nii.gz"), _write(a, pred / "c2.nii.gz")
    _write(a, ref / "c2.nii.gz")
    _write(np.random.default_rng(0).normal(size=a.shape).astype(np.float32), img / "c1_0000.nii.gz")
    return ref, pred, img


def test_missing_prediction_is_an_error(folders, tmp_path):
    ref, pred, _ = folders
    (pred / "c2.nii.gz").unlink()
    with pytest.raises(UserError, match="c2"):
        score_predictions(ref, pred, tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics_per_case.csv").exists()


def test_score_predictions_uses_the_evaluation_package(folders, tmp_path):
    ref, pred, _ = folders
    table, metric_set = score_predictions(ref, pred, tmp_path / "eval")
    assert "surface Dice" in metric_set and {"dice", "surface_dice"} <= set(table.columns)
    assert table.set_index("case_id")["dice"].to_dict() == pytest.approx({"c1": 2 / 3, "c2": 1.0})
    assert mean_dice(table) == pytest.approx((2 / 3 + 1) / 2)


def test_example_figure(folders, tmp_path):
    ref, pred, img = folders
    out = plot_examples([("c1", img / "c1_0000.nii.gz", ref / "c1.nii.gz", pred / "c1.nii.gz")], tmp_path / "ex.png")
    assert out.is_file() and out.stat().st_size > 1000
