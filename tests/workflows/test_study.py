"""`nnunet-swin study`: which stock commands run for which state, the custom split, bad input, the report; and (slow)
a two-arm smoke study end to end, then a resume after one arm was interrupted."""
from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnunet_swin.errors import UserError
from nnunet_swin.workflows import study as st
from nnunet_swin.workflows import study_executors, study_splits, study_steps
from nnunet_swin.workflows.study_arms import PAPER_ARMS, ArmSpec, parse_arm
from nnunet_swin.workflows.study_report import write_study_report
from nnunet_swin.workflows.study_executors import SlurmOptions
from nnunet_swin.workflows.study_runner import Journal, run_steps
from nnunet_swin.workflows.study_state import ArmRecord, StepRecord

DATASET = 947
NAME = f"Dataset{DATASET}_Toy"
PLANS = "nnUNetSMITPlans"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


# ------------------------------------------------------------------------------------------------ a toy layout

def _plans():
    cfg = {"patch_size": [32, 64, 64], "data_identifier": f"{PLANS}_3d_fullres", "swin": {"tumor_labels": [1]},
           "architecture": {"arch_kwargs": {"backbone": "smit_tiny"}}}
    return {"plans_name": PLANS, "configurations": {"3d_fullres": cfg, "3d_cubic": {**cfg, "patch_size": [64] * 3}}}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """nnU-Net folders with a raw dataset (4 training + 2 test cases, empty files) and a plans file; no training."""
    dirs = {k: tmp_path / k for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for k, v in dirs.items():
        v.mkdir()
        monkeypatch.setenv(k, str(v))
    monkeypatch.setenv("nnUNet_swin_pretrained", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "smit_tiny.pth").touch()
    raw = dirs["nnUNet_raw"] / NAME
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (raw / sub).mkdir(parents=True)
    for i in range(4):
        (raw / "imagesTr" / f"toy_{i:03d}_0000.nii.gz").touch()
        (raw / "labelsTr" / f"toy_{i:03d}.nii.gz").touch()
    for i in range(4, 6):
        (raw / "imagesTs" / f"toy_{i:03d}_0000.nii.gz").touch()
        (raw / "labelsTs" / f"toy_{i:03d}.nii.gz").touch()
    (raw / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T2"}, "file_ending": ".nii.gz",
                                                  "labels": {"background": 0, "tumour": 1}, "numTraining": 4}))
    pre = dirs["nnUNet_preprocessed"] / NAME
    pre.mkdir()
    (pre / f"{PLANS}.json").write_text(json.dumps(_plans()))
    return {"tmp": tmp_path, "raw": raw, "pre": pre, "results": dirs["nnUNet_results"] / NAME, **dirs}


def _settings(toy, **kw):
    return st.StudySettings(output=toy["tmp"] / "study", dataset_id=DATASET, progress=False, **kw)


def _model(toy, trainer, configuration, fold=0, checkpoint=None):
    folder = toy["results"] / f"{trainer}__{PLANS}__{configuration}"
    (folder / f"fold_{fold}").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(_plans()))
    if checkpoint:
        (folder / f"fold_{fold}" / checkpoint).touch()
    return folder


# ------------------------------------------------------------------------------------------------ arms and commands

def test_arm_names():
    assert parse_arm("ACT") == ArmSpec("ACT", "SwinACTTrainer", "3d_fullres", True)
    assert parse_arm("Base").configuration == "3d_cubic" and not parse_arm("Scratch").pretrained
    for text in ("B-only", "only:B"):
        arm = parse_arm(text)
        assert (arm.name, arm.trainer, arm.configuration, arm.subtype) == ("B-only", "SwinACTTrainer", "3d_fullres",
                                                                           "B")
    assert parse_arm("Masked") == ArmSpec("Masked", "SwinMaskedTrainer", "3d_cubic", True)
    with pytest.raises(UserError, match="unknown arm 'Fancy'"):
        parse_arm("Fancy")


def test_each_fold_state_gets_its_stock_command(toy):
    study = st.resolve_study(_settings(toy, preset="smoke", arms=["ACT", "Base", "TA"]))
    _model(toy, "SwinACTTrainer_smoke", "3d_fullres", checkpoint="checkpoint_final.pth")      # done
    _model(toy, "SwinBaseTrainer_smoke", "3d_cubic", checkpoint="checkpoint_latest.pth")      # interrupted
    act, base, ta = study.arms                                                                 # TA: new
    assert [study_steps.fold_state(study.model_folder(a), 0) for a in study.arms] == ["done", "interrupted", "new"]
    assert study_steps.train_command(study, act, 0) is None
    resume = study_steps.train_command(study, base, 0)
    assert resume[1:] == [str(DATASET), "3d_cubic", "0", "-tr", "SwinBaseTrainer_smoke", "-p", PLANS, "-device",
                          "cpu", "--c"] and resume[0].endswith("nnUNetv2_train")
    study.settings.device = "cuda"
    assert study_steps.train_command(study, ta, 0)[1:] == [str(DATASET), "3d_cubic", "0", "-tr",
                                                           "SwinTATrainer_smoke", "-p", PLANS, "-device", "cuda"]
    study.settings.device = "cpu"
    lines = st.print_commands(study)
    assert len(lines) == 2                                     # the finished arm is left out
    assert "nnUNetv2_train" in lines[0] and lines[0].endswith("-device cpu --c") and "SwinBaseTrainer_smoke" in lines[0]
    assert "nnUNet_extTrainer=" in lines[0] and f"nnUNet_results={toy['nnUNet_results']}" in lines[0]
    assert "nnUNet_swin_pretrained=" in lines[1]


def test_presets_choose_arms_and_trainers(toy):
    smoke = st.resolve_study(_settings(toy, preset="smoke"))
    assert [smoke.trainer(a) for a in smoke.arms] == ["SwinACTTrainer_smoke", "SwinBaseTrainer_smoke"]
    paper = st.resolve_study(st.StudySettings(output=toy["tmp"] / "paper", dataset_id=DATASET, progress=False,
                                              folds=[0, 1]))
    assert [paper.trainer(a) for a in paper.arms] == ["SwinBaseTrainer", "SwinTATrainer", "SwinACTTrainer",
                                                      "SwinScratchTrainer"]
    assert paper.folds(paper.arms[0]) == [0, 1]
    from nnunet_swin import trainers
    for suffix in ("_smoke", "_demo"):
        for arm in PAPER_ARMS.values():
            assert arm.trainer + suffix in trainers.__all__


def _train(study):
    """The training steps of the table, run by the local executor."""
    journal = Journal(study.state, study.paths.output, study.save, lambda line: None)
    study.paths.output.mkdir(parents=True, exist_ok=True)
    steps = [s for s in st.build_table(study, journal) if s.kind == "train"]
    return run_steps(steps, st.make_executor(study, journal), journal)


def _fake_training(calls, fail=None):
    def fake_run(cmd, env, log_file, on_line=None):
        calls.append((cmd, env.get("CUDA_VISIBLE_DEVICES")))
        if fail and fail in cmd:
            return 1, "epoch 0\nRuntimeError: out of memory\n"
        time.sleep(0.2)
        folder = Path(env["nnUNet_results"]) / NAME / f"{cmd[5]}__{PLANS}__{cmd[2]}" / "fold_0"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoint_final.pth").touch()
        return 0, ""
    return fake_run


def test_parallel_arms_get_one_device_each(toy, monkeypatch):
    calls = []
    monkeypatch.setattr(study_executors, "run_command", _fake_training(calls))
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    monkeypatch.setattr(st, "default_device", lambda: "cuda")
    study = st.resolve_study(_settings(toy, preset="smoke", jobs=2, devices=["0", "1"]))
    assert set(_train(study).values()) == {"done"}
    assert sorted(d for _, d in calls) == ["0", "1"]
    assert all(cmd[cmd.index("-device") + 1] == "cuda" for cmd, _ in calls)
    state = json.loads((toy["tmp"] / "study" / "study.json").read_text())
    assert {k: v["status"] for k, v in state["steps"].items()} == {"train ACT fold 0": "done",
                                                                   "train Base fold 0": "done"}
    assert state["steps"]["train ACT fold 0"]["attempts"][0]["executor"] == "local"


def test_a_failed_arm_is_recorded_and_the_others_go_on(toy, monkeypatch):
    monkeypatch.setattr(study_executors, "run_command", _fake_training([], fail="SwinACTTrainer_smoke"))
    study = st.resolve_study(_settings(toy, preset="smoke"))
    outcome = _train(study)
    assert outcome == {"train ACT fold 0": "failed", "train Base fold 0": "done"}
    journal = Journal(study.state, study.paths.output, study.save, print)
    study_steps.arm_records(study, journal)
    arms = json.loads((toy["tmp"] / "study" / "study.json").read_text())["arms"]
    assert arms["ACT"]["status"] == "failed" and "out of memory" in arms["ACT"]["log_tail"]
    assert arms["ACT"]["log"] == "logs/train_ACT_fold0.log" and arms["Base"]["status"] == "done"
    assert "RuntimeError: out of memory" in arms["ACT"]["reason"]


# ------------------------------------------------------------------------------------------------ bad input

def test_bad_input_is_one_line_and_touches_nothing(toy):
    with pytest.raises(UserError, match="unknown arm 'Masks'"):
        st.resolve_study(_settings(toy, arms=["ACT", "Masks"]))
    study = st.resolve_study(_settings(toy, preset="smoke"))
    study.paths.output.mkdir()
    study.save()
    # an output folder holding another study
    with pytest.raises(UserError, match="holds another study"):
        st.resolve_study(_settings(toy, preset="smoke", plans="nnUNetSwinUNETRPlans"))
    # a folder with other files and no study.json
    (toy["tmp"] / "other").mkdir()
    (toy["tmp"] / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and holds no study.json"):
        st.resolve_study(st.StudySettings(output=toy["tmp"] / "other", dataset_id=DATASET, progress=False))
    # an arm whose model folder was trained on other plans
    folder = _model(toy, "SwinACTTrainer_smoke", "3d_fullres", checkpoint="checkpoint_final.pth")
    other = _plans()
    other["configurations"]["3d_fullres"]["patch_size"] = [64, 64, 64]
    (folder / "plans.json").write_text(json.dumps(other))
    with pytest.raises(UserError, match="trained on other plans"):
        st.resolve_study(_settings(toy, preset="smoke"))
    assert (folder / "fold_0" / "checkpoint_final.pth").is_file()
    assert (toy["tmp"] / "other" / "notes.txt").read_text() == "mine"


def test_no_test_split_and_no_cross_validation(toy):
    for sub in ("imagesTs", "labelsTs"):
        for f in (toy["raw"] / sub).iterdir():
            f.unlink()
    with pytest.raises(UserError, match="subtype-restricted arms .* no imagesTs/labelsTs"):
        st.resolve_study(_settings(toy, arms=["ACT", "B-only"]))
    study = st.resolve_study(_settings(toy, preset="smoke"))
    study.paths.output.mkdir()
    with pytest.raises(UserError, match="no test split .* no arm has finished cross-validation"):
        study_steps.gather_cv_reference(study)


def test_cross_validation_predictions_are_used_without_a_test_split(toy):
    for sub in ("imagesTs", "labelsTs"):
        for f in (toy["raw"] / sub).iterdir():
            f.unlink()
    study = st.resolve_study(_settings(toy, preset="smoke"))
    study.paths.output.mkdir()
    for arm in study.arms:
        val = study.model_folder(arm) / "fold_0" / "validation"
        val.mkdir(parents=True)
        (val / "summary.json").write_text("{}")
        (val / "toy_003.nii.gz").touch()
    for arm in study.arms:
        study_steps.gather_cross_validation(study, arm)
    study_steps.gather_cv_reference(study)
    reference = study.reference_folder()
    assert sorted(p.name for p in reference.iterdir()) == ["toy_003.nii.gz"]
    assert (reference / "toy_003.nii.gz").resolve() == toy["raw"] / "labelsTr" / "toy_003.nii.gz"
    assert all((study.prediction_folder(a) / "toy_003.nii.gz").is_file() for a in study.arms)


# ------------------------------------------------------------------------------------------------ custom split

def test_custom_fold_holds_one_subtypes_training_cases_and_keeps_existing_folds(toy):
    existing = [{"train": ["toy_000", "toy_001", "toy_002"], "val": ["toy_003"]},
                {"train": ["toy_001", "toy_002", "toy_003"], "val": ["toy_000"]}]
    splits_file = toy["pre"] / "splits_final.json"
    splits_file.write_text(json.dumps(existing))
    study = st.resolve_study(_settings(toy, arms=["ACT", "B-only", "only:D"]))
    sub = study.paths.output / "subtypes"
    sub.mkdir(parents=True)
    pd.DataFrame({"case_id": ["toy_000", "toy_001", "toy_002", "toy_003"],
                  "subtype": ["B", "D", "B", "D"]}).to_csv(sub / "subtypes_train.csv", index=False)
    study_splits.write_custom_folds(study)
    splits = json.loads(splits_file.read_text())
    assert splits[:2] == existing
    assert splits[2] == {"train": ["toy_000", "toy_002"], "val": ["toy_001", "toy_003"]}
    assert splits[3] == {"train": ["toy_001", "toy_003"], "val": ["toy_000", "toy_002"]}
    state = json.loads((study.paths.output / "study.json").read_text())
    assert state["custom_folds"]["B"]["fold"] == 2 and state["custom_folds"]["D"]["fold"] == 3
    b_only = next(a for a in study.arms if a.subtype == "B")
    assert study.folds(b_only) == [2] and study.trainer(b_only) == "SwinACTTrainer"
    assert study_steps.train_command(study, b_only, 2)[1:4] == [str(DATASET), "3d_fullres", "2"]
    # a second run appends nothing
    study_splits.write_custom_folds(st.resolve_study(_settings(toy, arms=["ACT", "B-only", "only:D"])))
    assert len(json.loads(splits_file.read_text())) == 4
    # the recorded fold changed by hand: stop, change nothing
    splits[2]["train"] = ["toy_001"]
    splits_file.write_text(json.dumps(splits))
    with pytest.raises(UserError, match="no longer holds its training cases"):
        study_splits.write_custom_folds(st.resolve_study(_settings(toy, arms=["B-only"])))
    assert json.loads(splits_file.read_text()) == splits


def test_subtype_arms_train_on_equal_numbers_of_cases():
    subtype_of = {f"c{i}": ("B" if i < 5 else "D") for i in range(8)}        # 5 bright, 3 dark
    size = study_splits.equal_subtype_size(subtype_of, ["B", "D"])
    assert size == 3
    b = study_splits.custom_fold(subtype_of, "B", size=size, seed=0)
    d = study_splits.custom_fold(subtype_of, "D", size=size, seed=0)
    assert len(b["train"]) == len(d["train"]) == 3 and set(b["train"]) < {f"c{i}" for i in range(5)}
    assert set(b["val"]) == set(subtype_of) - set(b["train"]) and d["train"] == ["c5", "c6", "c7"]
    assert study_splits.custom_fold(subtype_of, "B", size=size, seed=0) == b          # seeded: the same draw
    assert study_splits.custom_fold(subtype_of, "B")["train"] == [f"c{i}" for i in range(5)]


def test_an_unknown_subtype_is_named(toy):
    with pytest.raises(UserError, match="no training case has subtype 'X'.*B, D"):
        study_splits.custom_fold({"a": "B", "b": "D"}, "X")


# ------------------------------------------------------------------------------------------------ report

def _fake_outputs(out: Path):
    (out / "comparison" / "table2").mkdir(parents=True)
    table = pd.DataFrame({"label": [1, 1], "group": ["all", "all"], "model": ["ACT", "Base"], "n_cases": [2, 2],
                          "detection_rate": [1.0, 0.5], "detection_ci_low": [0.3, 0.1],
                          "detection_ci_high": [1.0, 0.9], "surface_dice_median": [0.8, 0.6],
                          "surface_dice_q1": [0.7, 0.5], "surface_dice_q3": [0.9, 0.7], "dice_median": [0.7, 0.5],
                          "dice_q1": [0.6, 0.4], "dice_q3": [0.8, 0.6]})
    table.to_csv(out / "comparison" / "table2" / "comparison_table.csv", index=False)
    pd.DataFrame({"metric": ["dice"], "model_a": ["ACT"], "model_b": ["Base"], "p": [0.03]}).to_csv(
        out / "comparison" / "table2" / "comparison_pairwise.csv", index=False)
    (out / "comparison" / "table2" / "comparison_dice.png").write_bytes(PNG)
    (out / "comparison_by_subtype" / "table2").mkdir(parents=True)
    table.assign(group=["B", "D"]).to_csv(out / "comparison_by_subtype" / "table2" / "comparison_table.csv",
                                          index=False)
    (out / "subtypes").mkdir()
    (out / "subtypes" / "subtypes_summary.json").write_text(json.dumps(
        {"k": 2, "names": ["B", "D"], "train": {"n": 4, "counts": {"B": 2, "D": 2}},
         "test": {"n": 2, "counts": {"B": 1, "D": 1}}}))
    (out / "subtypes" / "subtype_scatter.png").write_bytes(PNG)
    (out / "adi").mkdir()
    (out / "adi" / "adi_summary.json").write_text(json.dumps({"models": {
        "ACT": {"configuration": "3d_fullres", "n_scans": 2, "pf_mean": 0.0, "stages": {"S3": {"adi": {"mean": 0.1}}}},
        "Base": {"configuration": "3d_cubic", "n_scans": 2, "pf_mean": 0.4, "stages": {"S3": {"adi": {"mean": 0.5}}},
                 "spearman_last_stage_adi_vs_pf": {"rho": 0.9, "p": 0.01, "n": 5}}}}))
    for name in ("adi_vs_pf.png", "adi_per_stage.png", "surface_dice_binned.png"):
        (out / "adi" / name).write_bytes(PNG)
    (out / "cka" / "ACT").mkdir(parents=True)
    (out / "cka" / "ACT" / "cka_summary.json").write_text(json.dumps({"images_used": 4, "mean_diagonal": 0.8}))
    (out / "cka" / "ACT" / "cka_heatmap.png").write_bytes(PNG)


def test_report_holds_every_table_and_figure_and_marks_missing_and_failed_arms(toy):
    study = st.resolve_study(_settings(toy, arms=["ACT", "Base", "TA", "Scratch"]))
    out = study.paths.output
    _fake_outputs(out)
    def arm(status, name, **kw):
        return ArmRecord(status, name, "3d_fullres", [0], "", f"logs/train_{name}.log", **kw)
    study.state.arms = {"ACT": arm("done", "ACT"), "Base": arm("done", "Base"),
                        "TA": arm("failed", "TA", log_tail="CUDA error\n"), "Scratch": arm("missing", "Scratch")}
    study.state.test_split = "test split: imagesTs / labelsTs"
    md_path = write_study_report(study)
    md = md_path.read_text()
    for heading in ("## Arms", "## Table 2", "## Appearance subtypes", "### Comparison by subtype",
                    "## Attention dilution (ADI) against padding fraction", "## CKA against the pretrained encoder",
                    "## The paper's findings, checked"):
        assert heading in md
    findings = json.loads((out / "findings.json").read_text())
    assert any(f["finding"] == "pretrained beats Scratch" and f["verdict"] == "not comparable"
               and f["reason"] == "arm Scratch not run" for f in findings)
    assert "| TA | **FAILED** |" in md and "| Scratch | **MISSING** |" in md and "CUDA error" in md
    assert "Arms not in the tables below: TA (failed), Scratch (missing)" in md
    assert "0.800 [0.700, 0.900]" in md and "1.000 [0.300, 1.000]" in md     # Table 2 layout
    for figure in ("subtypes/subtype_scatter.png", "adi/adi_vs_pf.png", "adi/adi_per_stage.png",
                   "cka/ACT/cka_heatmap.png"):
        assert f"]({figure})" in md
    assert "comparison_dice.png" not in md      # boxplots gave way to the paired per-case plots
    page = (out / "report.html").read_text()
    assert 'class="failed"' in page and 'class="missing"' in page
    assert page.count("<img") == md.count("![") == 5
    assert "http://" not in page and "https://" not in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_says_why_a_section_is_empty(toy):
    study = st.resolve_study(_settings(toy, preset="smoke"))
    study.paths.output.mkdir()
    study.state.steps["compare"] = StepRecord("skipped", "compare", "1 arm(s) with predictions; comparing needs 2")
    md = write_study_report(study).read_text()
    assert "No comparison (skipped: 1 arm(s) with predictions; comparing needs 2)" in md
    assert "No ADI (not run)" in md and "| ACT | **MISSING** |" in md


# ------------------------------------------------------------------------------------------------ end to end (slow)

E2E_DATASET = 948


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory, plan_smoke_dataset):
    """Planned dataset (4 training + 2 test cases, smit_tiny, 64 mm), one fold, a stand-in encoder; then
    ``nnunet-swin study --preset smoke`` (ACT + Base) as a user runs it."""
    import subprocess

    root = tmp_path_factory.mktemp("study")
    env = plan_smoke_dataset(root, E2E_DATASET)["env"]
    pre = next((root / "pre").glob(f"Dataset{E2E_DATASET}_*"))
    cmd = [sys.executable, "-m", "nnunet_swin", "study", "-d", str(E2E_DATASET), "--preset", "smoke", "-o",
           str(root / "study"), "--device", "cpu", "-np", "1", "--arms", "ACT", "Base", "Masked"]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"root": root, "env": env, "cmd": cmd, "out": root / "study", "stdout": proc.stdout,
            "seconds": time.time() - t0, "results": root / "res" / pre.name}


def _state(out: Path) -> dict:
    return json.loads((out / "study.json").read_text())


@pytest.mark.slow
def test_smoke_study_end_to_end(smoke_study):
    out = smoke_study["out"]
    state = _state(out)
    assert state["dataset"].startswith(f"Dataset{E2E_DATASET}_") and state["plans"] == PLANS
    assert {k: v["status"] for k, v in state["arms"].items()} == {"ACT": "done", "Base": "done", "Masked": "done"}
    assert state["arms"]["Masked"]["trainer"] == "SwinMaskedTrainer_smoke"
    assert state["arms"]["ACT"]["trainer"] == "SwinACTTrainer_smoke" and state["arms"]["Base"]["configuration"] \
        == "3d_cubic"
    assert state["test_split"] == "test split: imagesTs / labelsTs"
    for step in ("subtypes", "evaluate ACT", "evaluate Base", "evaluate Masked", "compare table2",
                 "compare table2 by subtype", "compare masked", "compare masked by subtype", "adi", "cka ACT",
                 "cka Base", "cka Masked", "cka random-init", "report"):
        assert state["steps"][step]["status"] == "done", (step, state["steps"][step])
    assert len(list((out / "predictions" / "ACT").glob("*.nii.gz"))) == 2
    assert (out / "comparison" / "table2" / "comparison_table.csv").is_file()
    assert set(pd.read_csv(out / "comparison" / "masked" / "comparison_table.csv").model) == {"ACT", "Masked"}
    floor = json.loads((out / "cka" / "random-init" / "cka_summary.json").read_text())
    assert set(floor["models"]) == {"pretrained", "random init"} and floor["images_used"] >= 4
    assert (out / "adi" / "adi_vs_pf.png").is_file() and (out / "cka" / "Base" / "cka_heatmap.png").is_file()
    # the Masked arm, through stock nnUNetv2_predict and the ADI analysis: its padding is never attended
    assert len(list((out / "predictions" / "Masked").glob("*.nii.gz"))) == 2
    adi = json.loads((out / "adi" / "adi_summary.json").read_text())["models"]
    assert adi["Base"]["stages"]["S0"]["adi"]["mean"] > 0      # stage 3 of a 40 mm scan in 64 mm holds no padding
    assert all(v["adi"]["mean"] == 0 for v in adi["Masked"]["stages"].values()), adi["Masked"]["stages"]
    # surface Dice against pf from the cubic arm's evaluation (the ACT crop pads nothing here)
    adi_command = (out / "logs" / "adi.log").read_text().splitlines()[0]
    assert adi_command.index("--label Base") < adi_command.index("--label ACT")
    assert str(out / "evaluation" / "Base" / "metrics_per_case.csv") in adi_command
    assert (out / "findings.json").is_file() and "## The paper's findings, checked" in (out / "report.md").read_text()
    cost = state["arms"]["Masked"]["cost"]
    assert cost["tokens_per_patch"] == 32 ** 3 and cost["epochs"] == 3 and cost["median_epoch_seconds"] > 0
    assert cost["prediction_seconds"] > 0 and state["arms"]["ACT"]["cost"]["tokens_per_patch"] < 32 ** 3
    md = (out / "report.md").read_text()
    assert "## Table 2" in md and "| ACT | done |" in md and "MISSING" not in md and "FAILED" not in md
    assert "## Cost of the arms" in md and "Masked against ACT: " in md
    page = (out / "report.html").read_text()
    assert "https://" not in page and "http://" not in page and page.count('src="data:image/png;base64,') >= 4


@pytest.mark.slow
def test_a_real_interruption_resumes_with_c(smoke_study):
    """The study killed while Base trains (after the short trainer wrote checkpoint_latest.pth); the next call
    resumes that fold with stock --c and repeats nothing finished."""
    import signal
    import subprocess

    import torch

    fold = smoke_study["results"] / f"SwinBaseTrainer_smoke__{PLANS}__3d_cubic" / "fold_0"
    act_attempts = _state(smoke_study["out"])["steps"]["train ACT fold 0"]["attempts"]
    for f in fold.glob("checkpoint_*.pth"):
        f.unlink()
    proc = subprocess.Popen(smoke_study["cmd"], env=smoke_study["env"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 900
    while not (fold / "checkpoint_latest.pth").is_file():
        assert proc.poll() is None and time.time() < deadline, "Base never wrote checkpoint_latest.pth"
        time.sleep(0.1)
    time.sleep(0.5)                                    # let torch.save finish the file
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (fold / "checkpoint_final.pth").exists()
    lines = subprocess.run(smoke_study["cmd"] + ["--print-commands"], env=smoke_study["env"], capture_output=True,
                           text=True, check=True).stdout.strip().splitlines()
    assert len(lines) == 1 and "SwinBaseTrainer_smoke" in lines[0] and lines[0].endswith("--c")
    again = subprocess.run(smoke_study["cmd"], env=smoke_study["env"], capture_output=True, text=True, timeout=1500)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    state = _state(smoke_study["out"])
    attempt = state["steps"]["train Base fold 0"]["attempts"][-1]
    assert attempt["outcome"] == "done" and attempt["command"].endswith("--c")
    assert state["steps"]["train ACT fold 0"]["attempts"] == act_attempts
    assert "[train ACT fold 0] skipped: done (checkpoint_final.pth present)" in again.stdout
    assert re.search(r"Base fold 0: training from epoch [12] of 3", again.stdout), again.stdout[-2000:]
    resumed = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert len(resumed["logging"]["lrs"]) == 3
    assert state["arms"]["Base"]["status"] == "done" and state["arms"]["ACT"]["status"] == "done"


# ------------------------------------------------------------------------------------------------ bad input, before work

def test_each_bad_argument_stops_before_any_work_with_one_line(toy, monkeypatch):
    out = toy["tmp"] / "study"
    # a plans name that does not exist (a typo) is not planned beside the real one unless --plan says so
    with pytest.raises(UserError, match=r"-p nnUNetSMITPlanz: no nnUNetSMITPlanz.json .*\(plans there: "
                                        r"nnUNetSMITPlans\); fix the name, or add --plan"):
        st.resolve_study(_settings(toy, plans="nnUNetSMITPlanz"))
    assert st.resolve_study(_settings(toy, plans="nnUNetSMITPlanz", plan=True)).plans_name == "nnUNetSMITPlanz"
    # pretrained arms without an encoder stop before planning; Scratch alone needs none
    monkeypatch.delenv("nnUNet_swin_pretrained")
    with pytest.raises(UserError, match="arms ACT, Base start from a pretrained encoder and nnUNet_swin_pretrained is "
                                        "not set; export nnUNet_swin_pretrained=.*--arms Scratch"):
        st.resolve_study(_settings(toy, preset="smoke"))
    assert [a.name for a in st.resolve_study(_settings(toy, arms=["Scratch"])).arms] == ["Scratch"]
    monkeypatch.setenv("nnUNet_swin_pretrained", str(toy["tmp"] / "nowhere"))
    with pytest.raises(UserError, match="nowhere does not exist"):
        st.resolve_study(_settings(toy, preset="smoke"))
    # devices this machine does not have
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(UserError, match="--devices 0: this machine has no CUDA GPU; run on the CPU with --device cpu"):
        st.resolve_study(_settings(toy, devices=["0"], arms=["Scratch"]))
    with pytest.raises(UserError, match="--device cuda: no CUDA GPU"):
        st.resolve_study(_settings(toy, device="cuda", arms=["Scratch"]))
    # SLURM asked for where there is none; --no-wait without SLURM
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(UserError, match="--executor slurm: sbatch/squeue are not on PATH.*or use --executor local"):
        st.resolve_study(_settings(toy, executor="slurm", arms=["Scratch"]))
    with pytest.raises(UserError, match="--no-wait is for --executor slurm"):
        st.resolve_study(_settings(toy, arms=["Scratch"], slurm=SlurmOptions(wait=False)))
    with pytest.raises(UserError, match="unknown executor 'pbs'"):
        st.resolve_study(_settings(toy, executor="pbs"))
    assert not out.exists()


def test_the_cli_refuses_an_unknown_executor_and_a_bad_slurm_time(capsys):
    from nnunet_swin.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["study", "-o", "x", "--executor", "pbs"])
    assert e.value.code == 2 and "invalid choice: 'pbs' (choose from 'local', 'slurm')" in capsys.readouterr().err
    assert main(["study", "-o", "x", "--executor", "slurm", "--slurm-time", "soon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--slurm-time 'soon' is not a SLURM time" in err[0]


def test_a_failed_step_is_shown_with_its_cause_and_the_study_exits_non_zero(toy, monkeypatch, capsys):
    """Every arm fails in training: the report is still written, the screen names the cause, exit status 1."""
    from nnunet_swin.cli import study as cli

    monkeypatch.setattr(study_executors, "run_command",
                        lambda cmd, env, log, on_line=None: (1, "epoch 0\nRuntimeError: CUDA out of memory\n"))
    code = cli.main(["-o", str(toy["tmp"] / "study"), "-d", str(DATASET), "--preset", "smoke", "--device", "cpu",
                     "--arms", "ACT"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "[train ACT fold 0] FAILED: exit status 1: RuntimeError: CUDA out of memory" in out
    assert "step(s) FAILED: " in err and (toy["tmp"] / "study" / "report.md").is_file()
    assert "| ACT | **FAILED** |" in (toy["tmp"] / "study" / "report.md").read_text()
