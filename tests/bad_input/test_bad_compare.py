"""`compare` on references without foreground, a NaN penalty, and an output folder holding an earlier comparison."""
import json

import numpy as np
import pytest

from seg_folders import SHAPE, write_folders, write_seg
from nnunet_swin.cli.main import main as cli
from nnunet_swin.evaluation import comparison


@pytest.fixture
def root(tmp_path):
    return write_folders(tmp_path)


def _compare(root, *extra, out="c", models=("modelA", "modelB")):
    return cli(["compare", str(root / "ref"), *(str(root / m) for m in models), "-o", str(root / out), "-np", "1",
                "--quiet", "--no-figures", *extra])


def _error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("nnunet-swin compare: error: "), err
    return err[0]


def test_references_without_foreground(root, capsys):
    for i in range(4):
        write_seg(root / "ref" / f"case_{i}.nii.gz", np.zeros(SHAPE, np.uint8))
    assert _compare(root) == 2
    assert "no reference case holds foreground of label(s) 1" in _error(capsys)
    assert not (root / "c").exists()


@pytest.mark.parametrize("flag, value", [("--missed-volume-ratio", "nan"), ("--missed-surface-dice", "nan"),
                                         ("--missed-surface-dice", "1.5"), ("--missed-volume-ratio", "-1")])
def test_bad_penalties_are_refused_before_evaluating(root, capsys, flag, value):
    assert _compare(root, flag, value) == 2
    assert f"({flag})" in _error(capsys)
    assert not (root / "c").exists()


def test_an_earlier_comparison_is_replaced_not_mixed(root, monkeypatch):
    (root / "modelC").mkdir()
    for p in (root / "modelB").iterdir():
        (root / "modelC" / p.name).write_bytes(p.read_bytes())
    assert _compare(root, models=("modelA", "modelB", "modelC")) == 0
    out = root / "c"
    (out / "comparison_volume_ratio_label9.png").write_bytes(b"old figure of another label")
    (out / ".comparison_table.csv.x1.tmp").write_text("left by a killed run")
    (out / "mine.csv").write_text("not a comparison file")

    def killed(path, text):
        raise KeyboardInterrupt
    monkeypatch.setattr(comparison, "write_text", killed)    # dies after the CSVs, before Markdown and marker
    assert _compare(root) == 130
    assert not (out / "comparison.json").exists()
    assert not (out / "comparison_volume_ratio_label9.png").exists() and not list(out.glob(".*.tmp"))
    assert (out / "mine.csv").read_text() == "not a comparison file"
    monkeypatch.undo()
    assert _compare(root) == 0
    settings = json.loads((out / "comparison.json").read_text())["settings"]
    assert sorted(settings["prediction_folders"]) == ["modelA", "modelB"]
    import pandas as pd
    assert set(pd.read_csv(out / "comparison_per_case.csv")["model"]) == {"modelA", "modelB"}
