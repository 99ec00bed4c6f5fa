"""Bad input to `nnunet-swin pretrain`, as a new user meets it: one line that says what is wrong, nothing lost."""
import os
import stat

import numpy as np
import pytest

from nnunet_swin.cli.main import main as cli
from nnunet_swin.pretraining.trainer import FINAL, LATEST

from pretraining_fixtures import ct_volume, write_volume

ARGS = ["--epochs", "1", "--iterations-per-epoch", "1", "--crop", "32", "--batch-size", "1", "--device", "cpu",
        "--num-workers", "0", "--out-dim", "32", "--head-hidden", "16", "--head-bottleneck", "8", "--quiet",
        "-backbone", "smit_tiny", "--modality", "CT"]


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_nan_voxels_are_refused_by_file_or_skipped_with_skip_bad(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    write_volume(folder / "good.nii.gz", ct_volume(rng))
    vol = ct_volume(rng)
    vol[5:7, 5:7, 5:7] = np.nan
    write_volume(folder / "holes.nii.gz", vol)
    assert cli(["pretrain", "-i", str(folder), "-o", str(tmp_path / "o")] + ARGS) == 2
    _one_line(capsys, "holes.nii.gz: 8 NaN or infinite voxel(s)", "--skip-bad")
    assert not (tmp_path / "o").exists()
    assert cli(["pretrain", "-i", str(folder), "-o", str(tmp_path / "o"), "--skip-bad"] + ARGS) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "holes.nii.gz: 8 NaN" in out and (tmp_path / "o" / FINAL).is_file()


def test_a_web_page_saved_as_nifti_gives_one_line_and_no_reader_tracebacks(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan.nii.gz").write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    assert cli(["pretrain", "-i", str(folder), "-o", str(tmp_path / "o")] + ARGS) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err and "Failed to open" not in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "scan.nii.gz: unreadable" in captured.err


def test_output_that_is_a_file_or_not_writable_is_refused_up_front(ct_folder, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(existing)] + ARGS) == 2
    _one_line(capsys, "is a file, not a folder")
    assert existing.read_text() == "keep me"
    if os.geteuid() == 0:
        pytest.skip("root may write into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert cli(["pretrain", "-i", str(ct_folder), "-o", str(locked / "run")] + ARGS) == 2
        _one_line(capsys, "permission denied")
    finally:
        locked.chmod(0o755)


def test_a_killed_save_is_swept_on_continue_and_files_follow_the_umask(ct_folder, tmp_path, capsys):
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        two = [a if a != "1" else "2" for a in ARGS[:2]] + ARGS[2:]          # 2 epochs, save every epoch
        from nnunet_swin.pretraining.data import discover_images
        from nnunet_swin.pretraining.trainer import Pretrainer
        from pretraining_fixtures import tiny_config
        Pretrainer(tiny_config(epochs=2, iterations_per_epoch=1), out, discover_images(str(ct_folder))[0],
                   progress=False, log_to_console=False).run(stop_after_epochs=1)
        assert (out / LATEST).is_file()
        leftover = out / f".{LATEST}.k1ll3d.tmp"
        leftover.write_bytes(b"")                                          # what a SIGKILL mid-save leaves
        assert cli(["pretrain", "-i", str(ct_folder), "-o", str(out), "--continue"] + two
                   [:two.index("--modality")]) == 0
        assert not leftover.exists() and (out / FINAL).is_file()
        assert "removed" in capsys.readouterr().out
        for path, mode in ((out / FINAL, 0o644), (out / "losses.json", 0o644), (out / "cache", 0o755),
                           (out / "cache" / "index.json", 0o644)):
            assert stat.S_IMODE(path.stat().st_mode) == mode, path
    finally:
        os.umask(old)


def test_messages_print_plain_numbers(tmp_path, capsys):
    folder = tmp_path / "in"
    write_volume(folder / "tiny.nii.gz", ct_volume(np.random.default_rng(0), (8, 8, 8)))
    assert cli(["pretrain", "-i", str(folder), "-o", str(tmp_path / "o")] + ARGS) == 2
    err = _one_line(capsys, "too small: [8, 8, 8] voxels")
    assert "np.int64" not in err and "np.float64" not in err


@pytest.mark.parametrize("flag, value, message", [
    ("--teacher-temp", ["0", "0.07"], "--teacher-temp must be two positive numbers"),
    ("--student-temp", ["-0.1"], "--student-temp must be a positive number"),
    ("--teacher-momentum", ["1.5"], "--teacher-momentum must be between 0 and 1, got 1.5"),
    ("--centre-momentum", ["-0.1"], "--centre-momentum must be between 0 and 1"),
    ("--weight-decay", ["-1"], "--weight-decay must be a number >= 0"),
    ("--clip-grad", ["nan"], "--clip-grad must be a number >= 0"),
    ("--teacher-temp-warmup-epochs", ["-3"], "--teacher-temp-warmup-epochs must be 0 or more"),
    ("--ibot-ratio", ["0.3", "0.4"], "--ibot-ratio must be RATIO VAR"),
    ("--teacher-share-threshold", ["2"], "--teacher-share-threshold must be between 0 and 1"),
])
def test_bad_values_of_the_new_flags_get_one_line(ct_folder, tmp_path, capsys, flag, value, message):
    assert cli(["pretrain", "-i", str(ct_folder), "-o", str(tmp_path / "o"), flag, *value] + ARGS) == 2
    _one_line(capsys, message)
    assert not (tmp_path / "o").exists()
