"""`nnunet-swin demo` (the study engine's quickstart preset): arguments checked before any work, the output folder's
safety, the preset's table, the training progress lines, and (slow) the whole demo with a smoke trainer."""
import json
import sys

import pytest

from nnunet_swin.cli.main import main as cli
from nnunet_swin.errors import UserError
from nnunet_swin.trainers.progress import PROGRESS_PREFIX, parse_progress_line, progress_line
from nnunet_swin.workflows.quickstart import QuickstartOptions, prepare_output, study_settings
from nnunet_swin.workflows.study import DEMO_MARKER


def test_refuses_to_delete_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        prepare_output(tmp_path, overwrite=False)
    with pytest.raises(UserError, match="not a folder written by"):
        prepare_output(tmp_path, overwrite=True)
    assert (tmp_path / "precious.txt").is_file()


def test_overwrites_its_own_previous_output(tmp_path):
    root = prepare_output(tmp_path / "demo", overwrite=False)
    (root / "workspace").mkdir()
    with pytest.raises(UserError, match="pass --overwrite"):
        prepare_output(tmp_path / "demo", overwrite=False)
    root = prepare_output(tmp_path / "demo", overwrite=True)
    assert (root / DEMO_MARKER).is_file() and not (root / "workspace").exists()


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


@pytest.mark.parametrize("trainer, message", [("NopeTrainer", "unknown trainer 'NopeTrainer'"),
                                              ("SwinBaseTrainer_demo", "ACT or Scratch recipe")])
def test_a_trainer_the_demo_cannot_train_is_refused_before_any_work(tmp_path, capsys, trainer, message):
    assert cli(["demo", "-o", str(tmp_path / "d"), "--trainer", trainer, "--quiet"]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_the_demo_is_the_quickstart_preset_with_the_demos_sizes(tmp_path):
    """The options land on the study's settings: one arm, fold 0, the trainer's suffix, the dataset's sizes."""
    s = study_settings(QuickstartOptions(output=tmp_path / "d", trainer="SwinScratchTrainer_smoke", num_train=5,
                                         num_test=2, fov_mm=48.0, pretrain_epochs=3, pretrain_iterations=4))
    assert (s.preset, s.arms, s.folds, s.trainer_suffix, s.device) == ("quickstart", ["Scratch"], [0], "_smoke", "cpu")
    assert (s.demo_num_train, s.demo_num_test, s.demo_fov_mm, s.backbone) == (5, 2, 48.0, "smit_tiny")
    assert (s.demo_pretrain_epochs, s.demo_pretrain_iterations) == (3, 4)
    assert not (tmp_path / "d").exists()


def test_quickstart_table_skips_the_analyses_of_several_arms(tmp_path):
    """The quickstart keeps plan, pretraining, training, prediction, evaluation and the report; the analyses that
    need several arms (or are not the demo's) are skipped with a reason, not failed."""
    from nnunet_swin.workflows.study import build_table, resolve_study
    from nnunet_swin.workflows.study_runner import Journal

    settings = study_settings(QuickstartOptions(output=tmp_path / "d", num_train=2, num_test=1, progress=False))
    study = resolve_study(settings)          # makes the small synthetic dataset in OUTPUT/workspace
    table = build_table(study, Journal(study.state, study.paths.output, lambda: None, lambda _: None))
    names = [s.name for s in table]
    assert names[:2] == ["plan", "pretrain encoder"] and "train ACT fold 0" in names and names[-1] == "report"
    skipped = {s.name: s.skip() for s in table if s.kind in ("subtypes", "compare", "adi", "cka")}
    assert set(skipped) == {"subtypes", "adi", "cka ACT", "cka random-init"}   # one arm: no family to compare
    assert not any(s.kind == "compare" for s in table)
    assert all("not part of the quickstart preset" in reason for reason in skipped.values())
    assert all(s.skip() is None for s in table if s.kind in ("plan", "pretrain", "train", "evaluate"))
    plan = next(s for s in table if s.name == "plan").command()
    assert plan[plan.index("-inplane_patch"):] == ["-inplane_patch", "64", "64", "-c", "3d_fullres",
                                                   "-normalization", "rescale01"]
    assert "-cubic_size" not in plan and study.trainer(study.arms[0]) == "SwinACTTrainer_quick"


def test_training_echo_follows_the_trainers_progress_lines(capsys):
    from types import SimpleNamespace

    from nnunet_swin.workflows.study_steps import TrainingEcho

    echo = TrainingEcho(SimpleNamespace(say=print), "ACT fold 0")
    echo("2026-01-01 10:00:00.000001: AdamW lr 0.0003 ... cosine annealing to epoch 99")  # log wording: ignored
    echo(progress_line("start", epoch=0, num_epochs=20))
    for epoch in range(3):
        echo("2026-01-01 10:00:01.000002: Pseudo dice [np.float32(0.25)]")  # ignored
        echo(progress_line("epoch", epoch=epoch, num_epochs=20, train_loss=0.5 - epoch / 10, val_loss=0.4,
                           pseudo_dice=0.25, ema_pseudo_dice=float("nan")))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["  ACT fold 0: training from epoch 0 of 20"] + [
        f"  ACT fold 0: epoch {e + 1}/20 loss {0.5 - e / 10:.3f} pseudo-Dice 0.250" for e in range(3)]


def test_progress_lines_round_trip_as_strict_json():
    line = progress_line("epoch", epoch=3, num_epochs=5, train_loss=float("nan"), pseudo_dice=0.5)
    assert "NaN" not in line
    assert parse_progress_line("2026-01-01 10:00:00: " + line) == {
        "event": "epoch", "epoch": 3, "num_epochs": 5, "train_loss": None, "pseudo_dice": 0.5}
    assert parse_progress_line("train_loss 0.3") is None
    assert parse_progress_line(PROGRESS_PREFIX + "{not json") is None


@pytest.mark.slow
def test_whole_demo_with_a_smoke_trainer(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["demo", "-o", str(out), "--num-train", "5", "--num-test", "2", "--trainer", "SwinACTTrainer_smoke",
                "--pretrain-epochs", "1", "--pretrain-iterations", "2", "-np", "1"]) == 0
    screen = capsys.readouterr().out
    assert "REDUCED for CPU" in screen and "NO CT-PRETRAINED WEIGHTS" in screen
    assert "[train ACT fold 0]" in screen and "mean Dice " in screen
    assert screen.strip().splitlines()[-1] == f"report: {out / 'report.md'} (and report.html)"
    text = (out / "report.md").read_text()
    assert "`nnunet-swin demo` is this study engine's `quickstart` preset" in text
    assert "smit_tiny encoder from an `nnunet-swin pretrain` run (SMIT, " in text and "nnunet-swin pretrain -i" in text
    assert "not the paper's CT-pretrained SMIT" in text
    from nnunet_swin.networks import SwinSegmentationNetwork
    from nnunet_swin.networks.presets import get_preset
    encoder = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")).encoder   # every encoder key is matched
    n_keys = len([k for k in encoder.state_dict() if not k.endswith("relative_position_index")])
    assert f"{n_keys} matched, 0 adapted, 0 missing" in text
    commands = text.split("## Commands to reproduce it by hand")[1]
    for line in ("nnunet-swin make_demo_dataset -d 501 --num-train 5 --num-test 2 --fov-mm 64",
                 "nnunet-swin plan_and_preprocess -d 501 -pl SMITPlanner",
                 "nnUNetv2_train 501 3d_fullres 0 -tr SwinACTTrainer_smoke -p nnUNetSMITPlans -device cpu",
                 "nnUNetv2_predict -i workspace/nnUNet_raw/Dataset501_", "nnunet-swin evaluate "):
        assert line in commands
    assert str(tmp_path) not in text and sys.executable not in text        # no path of this machine
    assert "Mean Dice **" in text and "| case_id | subtype | dice |" in text
    assert (out / "figures" / "training_curves.png").stat().st_size > 1000
    assert text.count("training curves per arm") == 1
    assert not (out / "training_curve.png").exists()                                  # the curve is drawn once
    assert len(list((out / "predictions" / "ACT").glob("*.nii.gz"))) == 2
    state = json.loads((out / "study.json").read_text())
    assert state["preset"] == "quickstart" and state["arms"]["ACT"]["status"] == "done"
    left_out = ("adi", "cka ACT", "cka random-init", "subtypes")       # one arm: no family to compare at all
    assert {n: s["status"] for n, s in state["steps"].items() if n in left_out} == dict.fromkeys(left_out, "skipped")
    assert not any(n.startswith("compare") for n in state["steps"])
