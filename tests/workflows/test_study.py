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
from nnunet_swin.workflows.study_report import write_study_report

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
    assert st.parse_arm("ACT") == st.ArmSpec("ACT", "SwinACTTrainer", "3d_fullres", True)
    assert st.parse_arm("Base").configuration == "3d_cubic" and not st.parse_arm("Scratch").pretrained
    for text in ("B-only", "only:B"):
        arm = st.parse_arm(text)
        assert (arm.name, arm.trainer, arm.configuration, arm.subtype) == ("B-only", "SwinACTTrainer", "3d_fullres",
                                                                           "B")
    assert st.parse_arm("Masked") == st.ArmSpec("Masked", "SwinMaskedTrainer", "3d_cubic", True)
    with pytest.raises(UserError, match="unknown arm 'Fancy'"):
        st.parse_arm("Fancy")


def test_each_fold_state_gets_its_stock_command(toy):
    study = st.resolve_study(_settings(toy, preset="smoke", arms=["ACT", "Base", "TA"]))
    _model(toy, "SwinACTTrainer_smoke", "3d_fullres", checkpoint="checkpoint_final.pth")      # done
    _model(toy, "SwinBaseTrainer_smoke", "3d_cubic", checkpoint="checkpoint_latest.pth")      # interrupted
    act, base, ta = study.arms                                                                 # TA: new
    assert [st.fold_state(study.model_folder(a), 0) for a in study.arms] == ["done", "interrupted", "new"]
    assert st.train_command(study, act, 0, "cpu") is None
    resume = st.train_command(study, base, 0, "cpu")
    assert resume[1:] == [str(DATASET), "3d_cubic", "0", "-tr", "SwinBaseTrainer_smoke", "-p", PLANS, "-device",
                          "cpu", "--c"] and resume[0].endswith("nnUNetv2_train")
    assert st.train_command(study, ta, 0, "1")[1:] == [str(DATASET), "3d_cubic", "0", "-tr", "SwinTATrainer_smoke",
                                                       "-p", PLANS, "-device", "cuda"]
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
        for arm in st.PAPER_ARMS.values():
            assert arm.trainer + suffix in trainers.__all__


def test_parallel_arms_get_one_device_each(toy, monkeypatch):
    calls = []

    def fake_run(cmd, env, log_file, on_line=None):
        calls.append((cmd, env.get("CUDA_VISIBLE_DEVICES")))
        time.sleep(0.2)
        folder = Path(env["nnUNet_results"]) / NAME / f"{cmd[5]}__{PLANS}__{cmd[2]}" / "fold_0"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoint_final.pth").touch()
        return 0, ""

    monkeypatch.setattr(st, "run_command", fake_run)
    study = st.resolve_study(_settings(toy, preset="smoke", jobs=2, devices=["0", "1"]))
    st.train_arms(study)
    assert sorted(d for _, d in calls) == ["0", "1"]
    assert all(cmd[cmd.index("-device") + 1] == "cuda" for cmd, _ in calls)
    state = json.loads((toy["tmp"] / "study" / "study.json").read_text())
    assert {k: v["status"] for k, v in state["arms"].items()} == {"ACT": "done", "Base": "done"}


def test_a_failed_arm_is_recorded_and_the_others_go_on(toy, monkeypatch):
    def fake_run(cmd, env, log_file, on_line=None):
        if "SwinACTTrainer_smoke" in cmd:
            return 1, "RuntimeError: out of memory\n"
        folder = Path(env["nnUNet_results"]) / NAME / f"{cmd[5]}__{PLANS}__{cmd[2]}" / "fold_0"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoint_final.pth").touch()
        return 0, ""

    monkeypatch.setattr(st, "run_command", fake_run)
    study = st.resolve_study(_settings(toy, preset="smoke"))
    st.train_arms(study)
    arms = json.loads((toy["tmp"] / "study" / "study.json").read_text())["arms"]
    assert arms["ACT"]["status"] == "failed" and "out of memory" in arms["ACT"]["log_tail"]
    assert arms["ACT"]["log"].endswith("train_ACT.log") and arms["Base"]["status"] == "done"


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
        st.predictions(study, study.arms)


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
    reference, folders = st.predictions(study, study.arms)
    assert sorted(p.name for p in reference.iterdir()) == ["toy_003.nii.gz"]
    assert (reference / "toy_003.nii.gz").resolve() == toy["raw"] / "labelsTr" / "toy_003.nii.gz"
    assert set(folders) == {"ACT", "Base"} and "cross-validation" in study.state["test_split"]


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
    st.write_custom_folds(study)
    splits = json.loads(splits_file.read_text())
    assert splits[:2] == existing
    assert splits[2] == {"train": ["toy_000", "toy_002"], "val": ["toy_001", "toy_003"]}
    assert splits[3] == {"train": ["toy_001", "toy_003"], "val": ["toy_000", "toy_002"]}
    state = json.loads((study.paths.output / "study.json").read_text())
    assert state["custom_folds"]["B"]["fold"] == 2 and state["custom_folds"]["D"]["fold"] == 3
    b_only = next(a for a in study.arms if a.subtype == "B")
    assert study.folds(b_only) == [2] and study.trainer(b_only) == "SwinACTTrainer"
    assert st.train_command(study, b_only, 2, "cpu")[1:4] == [str(DATASET), "3d_fullres", "2"]
    # a second run appends nothing
    st.write_custom_folds(st.resolve_study(_settings(toy, arms=["ACT", "B-only", "only:D"])))
    assert len(json.loads(splits_file.read_text())) == 4
    # the recorded fold changed by hand: stop, change nothing
    splits[2]["train"] = ["toy_001"]
    splits_file.write_text(json.dumps(splits))
    with pytest.raises(UserError, match="no longer holds its training cases"):
        st.write_custom_folds(st.resolve_study(_settings(toy, arms=["B-only"])))
    assert json.loads(splits_file.read_text()) == splits


def test_an_unknown_subtype_is_named(toy):
    with pytest.raises(UserError, match="no training case has subtype 'X'.*B, D"):
        st.custom_fold({"a": "B", "b": "D"}, "X")


# ------------------------------------------------------------------------------------------------ report

def _fake_outputs(out: Path):
    (out / "comparison").mkdir(parents=True)
    table = pd.DataFrame({"label": [1, 1], "group": ["all", "all"], "model": ["ACT", "Base"], "n_cases": [2, 2],
                          "detection_rate": [1.0, 0.5], "detection_ci_low": [0.3, 0.1],
                          "detection_ci_high": [1.0, 0.9], "surface_dice_median": [0.8, 0.6],
                          "surface_dice_q1": [0.7, 0.5], "surface_dice_q3": [0.9, 0.7], "dice_median": [0.7, 0.5],
                          "dice_q1": [0.6, 0.4], "dice_q3": [0.8, 0.6]})
    table.to_csv(out / "comparison" / "comparison_table.csv", index=False)
    pd.DataFrame({"metric": ["dice"], "model_a": ["ACT"], "model_b": ["Base"], "p": [0.03]}).to_csv(
        out / "comparison" / "comparison_pairwise.csv", index=False)
    (out / "comparison" / "comparison_dice.png").write_bytes(PNG)
    (out / "comparison_by_subtype").mkdir()
    table.assign(group=["B", "D"]).to_csv(out / "comparison_by_subtype" / "comparison_table.csv", index=False)
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
    study.state["arms"] = {"ACT": {"status": "done", "log": "logs/train_ACT.log"},
                           "Base": {"status": "done", "log": "logs/train_Base.log"},
                           "TA": {"status": "failed", "log": "logs/train_TA.log", "log_tail": "CUDA error\n"},
                           "Scratch": {"status": "missing", "log": "logs/train_Scratch.log"}}
    study.state["test_split"] = "test split: imagesTs / labelsTs"
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
    for figure in ("comparison/comparison_dice.png", "subtypes/subtype_scatter.png", "adi/adi_vs_pf.png",
                   "adi/adi_per_stage.png", "cka/ACT/cka_heatmap.png"):
        assert f"]({figure})" in md
    page = (out / "report.html").read_text()
    assert 'class="failed"' in page and 'class="missing"' in page
    assert page.count("<img") == 6
    assert "http://" not in page and "https://" not in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_says_why_a_section_is_empty(toy):
    study = st.resolve_study(_settings(toy, preset="smoke"))
    study.paths.output.mkdir()
    st.record_step(study, "compare", "skipped", reason="1 arm(s) with predictions; comparing needs 2")
    md = write_study_report(study).read_text()
    assert "No comparison (skipped: 1 arm(s) with predictions; comparing needs 2)" in md
    assert "No ADI (not run)" in md and "| ACT | **MISSING** |" in md


# ------------------------------------------------------------------------------------------------ end to end (slow)

E2E_DATASET = 948


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    """Planned dataset (4 training + 2 test cases, smit_tiny, 64 mm), one fold, a stand-in encoder; then
    ``nnunet-swin study --preset smoke`` (ACT + Base) as a user runs it."""
    import subprocess

    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint

    root = tmp_path_factory.mktemp("study")
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "nnUNet_compile": "f", "nnUNet_swin_pretrained": str(root / "weights")}
    make_demo_dataset(root / "raw", E2E_DATASET, spec=SyntheticSpec(
        num_train=4, num_test=2, fov_mm=64, z_median_mm=40.0, z_iqr_mm=(32.0, 48.0), short_share=0.0), progress=False)
    subprocess.run([sys.executable, "-m", "nnunet_swin", "plan_and_preprocess", "-d", str(E2E_DATASET), "-pl",
                    "SMITPlanner", "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-cubic_size", "64", "-c",
                    "3d_fullres", "-npfp", "1", "-np", "1", "--no_pbar"], env=env, check=True, capture_output=True)
    pre = next((root / "pre").glob(f"Dataset{E2E_DATASET}_*"))
    cases = sorted(p.name[:-len(".pkl")] for p in (pre / f"{PLANS}_3d_fullres").glob("*.pkl"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
    plans = json.loads((pre / f"{PLANS}.json").read_text())
    write_standin_checkpoint(plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"],
                             root / "weights" / "smit_tiny.pth")
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
    for step in ("subtypes", "evaluate ACT", "evaluate Base", "evaluate Masked", "compare", "compare by subtype",
                 "adi", "cka"):
        assert state["steps"][step]["status"] == "done", (step, state["steps"][step])
    assert len(list((out / "predictions" / "ACT").glob("*.nii.gz"))) == 2
    assert (out / "comparison" / "comparison_table.csv").is_file()
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
def test_resume_after_an_arm_was_interrupted(smoke_study):
    import subprocess

    import torch

    fold = smoke_study["results"] / f"SwinBaseTrainer_smoke__{PLANS}__3d_cubic" / "fold_0"
    act_final = smoke_study["results"] / f"SwinACTTrainer_smoke__{PLANS}__3d_fullres" / "fold_0" / \
        "checkpoint_final.pth"
    act_mtime = act_final.stat().st_mtime
    # what a kill after epoch 0 leaves: checkpoint_latest.pth of epoch 1, no checkpoint_final.pth
    ckpt = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    ckpt["current_epoch"] = 1
    ckpt["logging"] = {k: v[:1] for k, v in ckpt["logging"].items()}
    torch.save(ckpt, fold / "checkpoint_latest.pth")
    (fold / "checkpoint_final.pth").unlink()
    lines = subprocess.run(smoke_study["cmd"] + ["--print-commands"], env=smoke_study["env"], capture_output=True,
                           text=True, check=True).stdout.strip().splitlines()
    assert len(lines) == 1 and "SwinBaseTrainer_smoke" in lines[0] and lines[0].endswith("--c")
    proc = subprocess.run(smoke_study["cmd"], env=smoke_study["env"], capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = _state(smoke_study["out"])
    runs = state["arms"]["Base"]["runs"]
    assert len(runs) == 1 and runs[0]["action"] == "resumed (--c)" and runs[0]["exit_status"] == 0
    assert runs[0]["command"].endswith("--c")
    assert state["arms"]["ACT"]["runs"] == [{"fold": 0, "action": "skipped (checkpoint_final.pth present)"}]
    assert act_final.stat().st_mtime == act_mtime
    assert (fold / "checkpoint_final.pth").is_file()
    resumed = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert len(resumed["logging"]["lrs"]) == 3
    assert "training from epoch 1 of 3" in proc.stdout
    assert state["arms"]["Base"]["status"] == "done" and state["arms"]["ACT"]["status"] == "done"
