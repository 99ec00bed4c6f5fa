"""Per-epoch records from an nnU-Net checkpoint's logger state."""
import pytest
import torch

from nnunet_swin.workflows.training_log import plot_training_curve, training_curve


def _checkpoint(tmp_path, n=4):
    logging = {"train_losses": [1.0 - 0.1 * i for i in range(n)], "val_losses": [1.1 - 0.1 * i for i in range(n)],
               "mean_fg_dice": [0.1 * i for i in range(n)], "ema_fg_dice": [0.05 * i for i in range(n)],
               "lrs": [3e-4] * n, "epoch_start_timestamps": [10.0 * i for i in range(n)],
               "epoch_end_timestamps": [10.0 * i + 7 for i in range(n)], "dice_per_class_or_region": [[0.1]] * n}
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"logging": logging}, path)
    return path


def test_curve_table_has_one_row_per_epoch(tmp_path):
    table = training_curve(_checkpoint(tmp_path))
    assert list(table["epoch"]) == [0, 1, 2, 3]
    assert table["pseudo_dice"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert table["epoch_seconds"].tolist() == pytest.approx([7.0] * 4)


def test_curve_figure_is_written_atomically(tmp_path):
    out = plot_training_curve(training_curve(_checkpoint(tmp_path)), tmp_path / "fig" / "curve.png")
    assert out.is_file() and out.stat().st_size > 1000
    assert [p.name for p in out.parent.iterdir()] == ["curve.png"]
