"""`evaluate` on bad prediction files and output folders: one line each, and never a mixed result set."""
import json
import os

import numpy as np
import pytest

from seg_folders import blob, write_folders, write_seg
from nnunet_swin.cli.main import main as cli
from nnunet_swin.evaluation import folder_evaluation
from nnunet_swin.evaluation.folder_evaluation import PER_CASE_CSV, SUMMARY_JSON, SUMMARY_MD


@pytest.fixture
def root(tmp_path):
    return write_folders(tmp_path)


def _evaluate(root, *extra, prediction="modelA"):
    return cli(["evaluate", str(root / "ref"), str(root / prediction), "-np", "1", "--quiet", *extra])


def _error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("nnunet-swin evaluate: error: "), err
    return err[0]


def test_corrupt_prediction_is_named(root, capsys):
    (root / "modelA" / "case_2.nii.gz").write_bytes(b"\x1f\x8bnot really gzip")
    assert _evaluate(root) == 2
    line = _error(capsys)
    assert "case case_2: the prediction" in line and "not a readable gzip" in line and "case_2.nii.gz" in line
    assert "predict the case again" in line
    assert not (root / "modelA" / SUMMARY_JSON).exists()


def test_2d_prediction_and_2d_case_are_refused(root, capsys):
    write_seg(root / "modelA" / "case_1.nii.gz", blob()[3])
    assert _evaluate(root) == 2
    assert "case case_1: the prediction case_1.nii.gz is a 2D image" in _error(capsys)
    write_seg(root / "ref" / "case_1.nii.gz", blob()[3])    # both 2D: would be scored with 999 mm slices
    assert _evaluate(root) == 2
    line = _error(capsys)
    assert "is a 2D image" in line and "dummy" in line


def test_float_prediction_is_refused(root, capsys):
    write_seg(root / "modelA" / "case_0.nii.gz", blob(dtype=np.float32) * 0.4)
    assert _evaluate(root) == 2
    assert "case case_0: the prediction holds non-integer values (e.g. 0.4)" in _error(capsys)


def test_undeclared_prediction_label_warns(root, capsys):
    write_seg(root / "modelA" / "case_0.nii.gz", blob(label=3))
    assert _evaluate(root) == 0
    err = capsys.readouterr().err
    assert "nnunet-swin evaluate: warning: predictions of 1 case(s) (case_0) hold label value(s) [3]" in err


def test_label_in_no_case_is_not_scored(tmp_path, capsys):
    root = write_folders(tmp_path, labels={"background": 0, "tumour": 1, "node": 2})
    assert _evaluate(root) == 0
    captured = capsys.readouterr()
    assert "warning: label(s) 2 occur in no reference and no prediction; they are not scored" in captured.err
    summary = json.loads((root / "modelA" / SUMMARY_JSON).read_text())
    assert list(summary["labels"]) == ["1"] and summary["labels_not_scored"] == ["2"]
    assert "Not scored: label(s) 2" in (root / "modelA" / SUMMARY_MD).read_text()


def test_negative_crop_spacing_through_the_command(root, capsys):
    assert _evaluate(root, "--crop-depth", "16", "--crop-spacing-z", "-1") == 2
    assert "crop z spacing must be a positive number of mm, got -1" in _error(capsys)


def test_output_path_that_is_a_file_or_not_writable(root, capsys, monkeypatch):
    (root / "out.txt").write_text("x")
    assert _evaluate(root, "-o", str(root / "out.txt")) == 2
    assert f"output folder {root / 'out.txt'} is a file" in _error(capsys)
    assert _evaluate(root, "-o", str(root / "out.txt" / "sub")) == 2
    assert "lies under the file" in _error(capsys)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("locked") else real_access(p, mode))
    (root / "locked").mkdir()
    assert _evaluate(root, "-o", str(root / "locked")) == 2
    assert "is not writable" in _error(capsys)


def test_a_write_that_fails_midway_is_one_line(root, capsys, monkeypatch):
    def full_disk(path, text):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(folder_evaluation, "write_text", full_disk)
    assert _evaluate(root, "-o", str(root / "out")) == 2
    line = _error(capsys)
    assert "cannot write into" in line and "No space left on device" in line
    assert not (root / "out" / SUMMARY_JSON).exists()


def test_interrupted_run_never_leaves_a_new_csv_beside_an_old_marker(root, monkeypatch):
    out = root / "out"
    assert _evaluate(root, "-o", str(out)) == 0
    old_marker = (out / SUMMARY_JSON).read_text()
    (out / f".{PER_CASE_CSV}.abc123.tmp").write_text("half of an earlier run")
    (out / "notes.txt").write_text("the user's own file")

    def killed(path, text):            # the run dies after the new CSV, before the Markdown and the marker
        raise KeyboardInterrupt
    monkeypatch.setattr(folder_evaluation, "write_text", killed)
    assert _evaluate(root, "-o", str(out), prediction="modelB") == 130
    assert not (out / SUMMARY_JSON).exists() and old_marker            # old marker gone before anything new
    assert (out / PER_CASE_CSV).exists() and not list(out.glob(".*.tmp"))
    assert (out / "notes.txt").read_text() == "the user's own file"
    monkeypatch.undo()
    assert _evaluate(root, "-o", str(out), prediction="modelB") == 0
    assert "modelB" in json.loads((out / SUMMARY_JSON).read_text())["settings"]["prediction_folder"]


def test_error_starts_on_its_own_line_after_the_progress_bar(root, capsys):
    (root / "modelA" / "case_3.nii.gz").write_bytes(b"broken")
    assert cli(["evaluate", str(root / "ref"), str(root / "modelA"), "-np", "1"]) == 2
    last = capsys.readouterr().err.rstrip("\n").split("\n")[-1]
    assert last.startswith("nnunet-swin evaluate: error: case case_3"), repr(last)


def test_truncated_prediction_is_not_read_as_zeros(root, capsys):
    path = root / "modelA" / "case_1.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    assert _evaluate(root) == 2
    line = _error(capsys)
    assert "case case_1: the prediction" in line and "truncated" in line and "predict the case again" in line


def test_unreadable_prediction_is_named(root, capsys):
    import gzip
    (root / "modelA" / "case_0.nii.gz").write_bytes(gzip.compress(b"no header here " * 64))
    assert _evaluate(root) == 2
    line = _error(capsys)
    assert "case case_0: cannot read the prediction" in line and "predict the case again" in line


def test_4d_prediction_is_refused(root, capsys):
    write_seg(root / "modelA" / "case_2.nii.gz", np.stack([blob(), blob()]))
    assert _evaluate(root) == 2
    line = _error(capsys)
    assert "case case_2: the prediction case_2.nii.gz" in line and "(4D)" in line


def test_on_a_terminal_the_error_line_starts_fresh(root, capsys, monkeypatch):
    import sys
    (root / "modelA" / "case_3.nii.gz").write_bytes(b"broken")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert _evaluate(root) == 2
    err = capsys.readouterr().err
    assert "\nnnunet-swin evaluate: error: case case_3" in err
