"""``study.json`` records no absolute path: every path relative to the study folder (``..`` for the nnU-Net folders
beside it), resolved back against the study folder when read; the study folder can be moved."""
from __future__ import annotations

import json
import os
import shutil

from test_study import DATASET, _fake_training, _settings, _train, toy  # noqa: F401 (the toy layout fixture)

from nnunet_swin.workflows import study as st
from nnunet_swin.workflows import study_executors, study_steps
from nnunet_swin.workflows.study_runner import Journal
from nnunet_swin.workflows.study_state import read_state


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_study_json_holds_no_absolute_path_and_reads_back_absolute_folders(toy, monkeypatch):
    monkeypatch.setattr(study_executors, "run_command", _fake_training([], fail="SwinACTTrainer_smoke"))
    study = st.resolve_study(_settings(toy, preset="smoke"))
    assert _train(study) == {"train ACT fold 0": "failed", "train Base fold 0": "done"}
    study_steps.arm_records(study, Journal(study.state, study.paths.output, study.save, print))
    folder = study.paths.output
    text = (folder / "study.json").read_text()
    assert str(folder) not in text and str(toy["tmp"]) not in text
    data = json.loads(text)
    assert [s for s in _strings(data) if s.startswith("/")] == []
    assert data["environment"] == {"nnUNet_raw": "../nnUNet_raw", "nnUNet_preprocessed": "../nnUNet_preprocessed",
                                   "nnUNet_results": "../nnUNet_results"}
    attempt = data["steps"]["train Base fold 0"]["attempts"][-1]
    assert attempt["log"] == "logs/train_Base_fold0.log" and "nnUNetv2_train" in attempt["command"]
    assert data["arms"]["Base"]["model_folder"].startswith("../nnUNet_results/")
    # read back: the folders absolute again, against the study folder
    state = read_state(folder)
    assert state.environment["nnUNet_results"] == str(toy["nnUNet_results"])
    assert state.arms["Base"].model_folder == str(study.model_folder(study.arms[1]))
    # moved together with the nnU-Net folders, the study still finds them (no -d: from study.json)
    moved = toy["tmp"].parent / (toy["tmp"].name + "_moved")
    shutil.move(toy["tmp"], moved)
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("nnUNet_swin_pretrained", str(moved / "weights"))
    again = read_state(moved / "study")
    assert again.environment["nnUNet_raw"] == os.path.join(str(moved), "nnUNet_raw")
    resumed = st.resolve_study(st.StudySettings(output=moved / "study", preset="smoke", progress=False))
    assert resumed.paths.results == moved / "nnUNet_results" and resumed.dataset_id == DATASET


def test_free_text_loses_the_study_folder_but_not_a_sibling_folder(tmp_path):
    from nnunet_swin.workflows.study_state import relative_paths

    root = tmp_path / "study"
    data = relative_paths({"reason": f"see {root}/logs/a.log, not {root}_old/b.log", "log": str(root / "logs" / "a"),
                           "command": f"python {tmp_path}/res/a -o {root}/pred", "log_tail": f"in {root}"}, root)
    assert data == {"reason": f"see logs/a.log, not {root}_old/b.log", "log": "logs/a",
                    "command": "python ../res/a -o pred", "log_tail": "in ."}
