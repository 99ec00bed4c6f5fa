"""`nnunet-swin demo`: workspace safety, the training progress bar, and (slow) the whole pipeline with a smoke trainer."""
import pytest

from nnunet_swin.cli.main import main as cli
from nnunet_swin.errors import UserError
from nnunet_swin.trainers.progress import PROGRESS_PREFIX, parse_progress_line, progress_line
from nnunet_swin.workflows.demo import MARKER, DemoSettings, _prepare_output, _TrainingProgress, run_demo


def test_refuses_to_delete_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        _prepare_output(DemoSettings(output=tmp_path))
    with pytest.raises(UserError, match="not a folder written by"):
        _prepare_output(DemoSettings(output=tmp_path, overwrite=True))
    assert (tmp_path / "precious.txt").is_file()


def test_overwrites_its_own_previous_workspace(tmp_path):
    ws = _prepare_output(DemoSettings(output=tmp_path / "demo"))
    (ws.raw / "old").mkdir()
    ws = _prepare_output(DemoSettings(output=tmp_path / "demo", overwrite=True))
    assert (ws.root / MARKER).is_file() and not (ws.raw / "old").exists() and ws.results.is_dir()


def test_cli_reports_an_existing_folder_as_one_line_error(tmp_path, capsys):
    (tmp_path / "x").write_text("x")
    assert cli(["demo", "-o", str(tmp_path), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_checks_arguments_first_and_keeps_old_spellings(tmp_path, capsys):
    """Old spellings still parse (one deprecation line); a bad value stops before any work, naming the new flag."""
    assert cli(["demo", "-o", str(tmp_path / "d"), "--num_train", "1", "--dataset_id", "7", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--num_train is deprecated" in err and "--dataset_id is deprecated" in err
    assert "--num-train must be at least 2, got 1" in err and not (tmp_path / "d").exists()


def test_training_progress_follows_the_trainers_progress_lines():
    bar = _TrainingProgress(enabled=True)
    bar("2026-01-01 10:00:00.000001: AdamW lr 0.0003 ... cosine annealing to epoch 99")  # log wording: ignored
    assert bar.bar is None
    bar(progress_line("start", epoch=0, num_epochs=20))
    for epoch in range(3):
        bar("2026-01-01 10:00:01.000002: Pseudo dice [np.float32(0.25)]")  # ignored
        bar(progress_line("epoch", epoch=epoch, num_epochs=20, train_loss=0.5 - epoch / 10, val_loss=0.4,
                          pseudo_dice=0.25, ema_pseudo_dice=float("nan")))
    assert bar.bar.total == 20 and bar.bar.n == 3
    assert bar.bar.postfix == "loss=0.300, pseudo_dice=0.250"
    bar.close()


def test_progress_lines_round_trip_as_strict_json():
    line = progress_line("epoch", epoch=3, num_epochs=5, train_loss=float("nan"), pseudo_dice=0.5)
    assert "NaN" not in line
    assert parse_progress_line("2026-01-01 10:00:00: " + line) == {
        "event": "epoch", "epoch": 3, "num_epochs": 5, "train_loss": None, "pseudo_dice": 0.5}
    assert parse_progress_line("train_loss 0.3") is None
    assert parse_progress_line(PROGRESS_PREFIX + "{not json") is None


@pytest.mark.slow
def test_whole_demo_with_a_smoke_trainer(tmp_path):
    result = run_demo(DemoSettings(output=tmp_path / "demo", num_train=5, num_test=2, trainer="SwinACTTrainer_smoke",
                                   pretrain_epochs=1, pretrain_iterations=2,
                                   num_processes=1, progress=False))
    text = result.report.read_text()
    assert "smit_tiny encoder from an `nnunet-swin pretrain` run (SMIT, " in text and "nnunet-swin pretrain -i" in text
    assert "not the paper's CT-pretrained SMIT" in text and "starting plateau" not in text
    from nnunet_swin.networks import SwinSegmentationNetwork
    from nnunet_swin.networks.presets import get_preset
    encoder = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")).encoder   # every encoder key is matched
    n_keys = len([k for k in encoder.state_dict() if not k.endswith("relative_position_index")])
    assert f"{n_keys} matched, 0 adapted, 0 missing" in text
    assert "nnUNetv2_train" in text and "nnUNetv2_predict" in text
    for name in ("training_curve.png", "examples.png"):
        assert (result.report.parent / name).stat().st_size > 1000
    assert len(list((result.workspace / "predictions").glob("*.nii.gz"))) == 2
    assert 0.0 <= result.mean_dice <= 1.0
    assert set(result.seconds) >= {"train", "predict", "evaluate"}
