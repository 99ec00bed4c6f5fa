"""The loop end to end on tiny data: checkpoints the fine-tuning encoder loads, exact resume, the CLI's refusals."""
import json
import math

import pytest
import torch

from nnunet_swin.cli.main import main as cli
from nnunet_swin.errors import UserError
from nnunet_swin.networks.weights import inspect_checkpoint, load_pretrained_encoder, read_checkpoint
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
from nnunet_swin.pretraining.data import discover_images
from nnunet_swin.networks.weights.metadata import FORMAT, read_pretraining_metadata
from nnunet_swin.pretraining.trainer import FINAL, LATEST, Pretrainer

from pretraining_fixtures import tiny_config

LOSS_KEYS = ("loss", "mip", "mpd", "itd", "ctd", "lr", "momentum")


def _run(folder, out, stop=None, resume=False, **kw):
    images, _ = discover_images(str(folder))
    trainer = Pretrainer(tiny_config(**kw), out, images, device="cpu", resume=resume, progress=False,
                         log_to_console=False)
    return trainer, trainer.run(stop_after_epochs=stop)


@pytest.mark.parametrize("method", ["smit", "smart"])
def test_checkpoint_loads_into_the_fine_tuning_encoder_with_no_missing_key(ct_folder, tmp_path, method):
    out = tmp_path / method
    trainer, history = _run(ct_folder, out, method=method)
    assert len(history) == 4 and all(torch.isfinite(torch.tensor(r["loss"])) for r in history)
    assert ("ctd" in history[0]) == (method == "smart")
    assert (out / FINAL).is_file() and not (out / LATEST).exists()
    assert (out / "loss_curve.png").stat().st_size > 0 and "epoch 2/2" in (out / "pretrain_log.txt").read_text()
    assert len(json.loads((out / "losses.json").read_text())["history"]) == 4
    obj = read_checkpoint(out / FINAL)                                    # weights_only=True
    meta = read_pretraining_metadata(obj)
    assert meta["format"] == FORMAT and meta["method"] == method and meta["backbone"] == "smit_tiny"
    assert meta["spacing_zyx_mm"] == [1.0, 1.0, 1.0] and meta["intensity"]["hu_window"] == [-175.0, 250.0]
    assert meta["epochs_completed"] == 2 and meta["num_volumes"] == 3 and meta["finished"] is True
    net = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny"))
    report = load_pretrained_encoder(net, out / FINAL)
    assert report.complete and not report.missing and len(report.matched) == len(net.encoder.state_dict())
    # 4 steps: the EMA teacher still holds ~all of its init, so the rule exports the student, and says why
    assert meta["encoder_loaded"] == "student" and meta["teacher_init_share"] > 0.98
    assert "random initialisation" in meta["encoder_rule"] and "student" in obj and "teacher" not in obj
    student = trainer.student.encoder.state_dict()
    assert all(torch.equal(net.encoder.state_dict()[k], student[k].cpu()) for k in student)
    assert meta["distance_from_init"]["student"] > meta["distance_from_init"]["teacher"] > 0
    # both encoders stay in the file
    pre = obj["pretraining"]
    assert all(torch.equal(pre["teacher"]["encoder." + k], v.cpu()) for k, v in
               trainer.teacher.encoder.state_dict().items())
    # the collapse monitor's values per step and head
    row = history[-1]
    heads = ("itd", "mpd", "ctd") if method == "smart" else ("itd", "mpd")
    for head in heads:
        for stat in ("teacher_entropy", "batch_entropy", "kl", "logit_std", "cosine"):
            assert f"{stat}_{head}" in row, (stat, head)
        assert 0 <= row[f"teacher_entropy_{head}"] <= math.log(32) + 1e-4
    assert ("class_attention_entropy" in row) == (method == "smart")
    assert "teacher entropy (ln K 3.4657): ITD" in (out / "pretrain_log.txt").read_text()
    assert inspect_checkpoint(str(out / FINAL)).fits == ["smit_tiny"]
    # the adaptation plan beside the metadata names the transfer surface the exported keys live under
    from nnunet_swin.networks.weights.metadata import ADAPTATION_PLAN_KEY, adaptation_plan
    assert obj[ADAPTATION_PLAN_KEY] == adaptation_plan(meta)
    prefix = obj[ADAPTATION_PLAN_KEY]["key_to_encoder"] + "."
    assert all(k.startswith(prefix) for k in obj[meta["encoder_loaded"]])


def test_resume_reproduces_the_uninterrupted_run(ct_folder, tmp_path):
    _, straight = _run(ct_folder, tmp_path / "straight", method="smart", epochs=2)
    _, first = _run(ct_folder, tmp_path / "split", stop=1, method="smart", epochs=2)
    assert (tmp_path / "split" / LATEST).is_file() and not (tmp_path / "split" / FINAL).exists()
    _, resumed = _run(ct_folder, tmp_path / "split", resume=True, method="smart", epochs=2)
    assert len(resumed) == len(straight) == 4
    for a, b in zip(straight, resumed):
        assert (a["epoch"], a["iteration"], a["volumes"]) == (b["epoch"], b["iteration"], b["volumes"])
        for k in LOSS_KEYS:
            assert a[k] == b[k], (k, a, b)
    for which in ("student", "teacher"):
        s = read_checkpoint(tmp_path / "straight" / FINAL)["pretraining"][which]
        r = read_checkpoint(tmp_path / "split" / FINAL)["pretraining"][which]
        assert all(torch.equal(s[k], r[k]) for k in s)
    for a, b in zip(straight, resumed):                       # the monitor resumes exactly too
        assert all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a if k.startswith("teacher_entropy"))


ARGS = ["--epochs", "1", "--iterations-per-epoch", "1", "--crop", "32", "--batch-size", "1", "--device", "cpu",
        "--num-workers", "0", "--out-dim", "32", "--head-hidden", "16", "--head-bottleneck", "8", "--quiet",
        "-backbone", "smit_tiny"]


def test_cli_runs_then_refuses_a_finished_folder_and_a_foreign_continue(ct_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--modality", "CT"] + ARGS) == 0
    assert (out / FINAL).is_file()
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--modality", "CT"] + ARGS) == 2
    err = capsys.readouterr().err
    assert "already holds a finished run" in err and len(err.strip().splitlines()) == 1
    # an interrupted run of another method / backbone
    (out / FINAL).rename(out / LATEST)
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--continue", "--method", "smart"] + ARGS) == 2
    assert "holds a run with method 'smit', not 'smart'" in capsys.readouterr().err
    args = [a if a != "smit_tiny" else "swin_unetr_tiny" for a in ARGS]
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--continue"] + args) == 2
    assert "backbone 'smit_tiny', not 'swin_unetr_tiny'" in capsys.readouterr().err
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--modality", "CT"] + ARGS) == 2
    assert "pass --continue" in capsys.readouterr().err
    longer = [a if a != "1" else "5" for a in ARGS[:2]] + ARGS[2:]                # --epochs 5
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--continue"] + longer) == 2
    assert "holds a run with epochs 1, not 5" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--modality", "PET"], "unknown modality 'PET'"),
    ([], "--modality CT or --modality MR"),
    (["--modality", "CT", "--crop", "40"], "must be a positive multiple of 32"),
])
def test_cli_bad_options_stop_with_one_line_and_write_nothing(ct_folder, tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    args = [a for a in ARGS]
    if "--crop" in extra:
        i = args.index("--crop")
        del args[i:i + 2]
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out)] + args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_empty_folder_and_a_bad_image_write_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli(["pretrain", "-i", str(tmp_path / "empty"), "-o", str(tmp_path / "o1"), "--modality", "CT"] + ARGS) == 2
    assert "no images found" in capsys.readouterr().err and not (tmp_path / "o1").exists()
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.nii.gz").write_bytes(b"junk")
    assert cli(["pretrain", "-i", str(folder), "-o", str(tmp_path / "o2"), "--modality", "CT"] + ARGS) == 2
    err = capsys.readouterr().err
    assert "x.nii.gz: unreadable" in err and "--skip-bad" in err and not (tmp_path / "o2").exists()


def test_user_error_is_raised_for_a_cuda_request_without_cuda(ct_folder, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(UserError, match="no CUDA device"):
        Pretrainer(tiny_config(), tmp_path / "x", discover_images(str(ct_folder))[0], device="cuda")
