"""A two-channel (T2 + DWI-like), three-label (tumour, rectal wall, nodes) dataset end to end with stock commands:
plan (-tumor_labels 1) -> nnUNetv2_train (smoke, full-volume validation every epoch) -> nnUNetv2_predict (final and
best checkpoints) -> evaluate (per label, detection for the tumour only, mIoU / mDice / mAcc) -> compare."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
from nnunet_swin.trainers.validation import LOG_KEY

pytestmark = pytest.mark.slow


def run_cli(*args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    """A console script of this environment (ours or nnU-Net's), failing the test with its output tail."""
    from nnunet_swin.workflows.workspace import tool

    cmd = [args[0] if args[0] == sys.executable else tool(args[0]), *args[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc

DATASET, TRAINER = 941, "SwinScratchTrainer_smoke"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "nnUNet_compile": "f", "nnUNet_swin_val_every": "1"}
    env["nnUNet_extTrainer"] = run_cli(sys.executable, "-m", "nnunet_swin.cli.main", "env", "--ext_trainer_dir",
                                       env=env).stdout.strip().splitlines()[-1]
    spec = SyntheticSpec(num_train=4, num_test=2, fov_mm=64, z_median_mm=40.0, z_iqr_mm=(32.0, 48.0), short_share=0.0,
                         channels=("T2", "DWI"), labels="tumour+wall+nodes", seed=2)
    raw = make_demo_dataset(root / "raw", DATASET, spec=spec, progress=False)
    plan = run_cli("nnunet-swin", "plan_and_preprocess", "-d", str(DATASET), "-pl", "SMITPlanner", "-backbone",
                   "smit_tiny", "-inplane_patch", "64", "64", "-cubic_size", "64", "-c", "3d_fullres", "-npfp", "1",
                   "-np", "1", "--quiet", "--tumor-labels", "1", env=env)
    pre = next((root / "pre").glob(f"Dataset{DATASET}_*"))
    cases = sorted(p.name[:-len(".pkl")] for p in (pre / "nnUNetSMITPlans_3d_fullres").glob("*.pkl"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
    train = run_cli("nnUNetv2_train", str(DATASET), "3d_fullres", "0", "-tr", TRAINER, "-p", "nnUNetSMITPlans",
                    "-device", "cpu", env=env, timeout=900)
    out = root / "res" / pre.name / f"{TRAINER}__nnUNetSMITPlans__3d_fullres"
    for name, checkpoint in (("final", "checkpoint_final.pth"), ("best", "checkpoint_best.pth")):
        run_cli("nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(root / f"pred_{name}"), "-d", str(DATASET),
                "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-p", "nnUNetSMITPlans", "-chk", checkpoint,
                "-device", "cpu", "-npp", "1", "-nps", "1", env=env, timeout=600)
    return {"root": root, "env": env, "raw": raw, "pre": pre, "out": out, "plan_log": plan.stdout,
            "train_log": train.stdout + train.stderr}


def test_plans_record_the_tumour_label_and_two_channels(study):
    plans = json.loads((study["pre"] / "nnUNetSMITPlans.json").read_text())
    cfg = plans["configurations"]["3d_fullres"]
    assert cfg["swin"]["tumor_labels"] == [1] and len(cfg["normalization_schemes"]) == 2
    assert "tumour labels [1]" in study["plan_log"]


def test_best_checkpoint_by_full_volume_dice(study):
    fold = study["out"] / "fold_0"
    assert "full-volume validation Dice" in study["train_log"]
    final = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    history = final["logging"][LOG_KEY]
    assert [epoch for epoch, _ in history] == [0, 1, 2]
    best = torch.load(fold / "checkpoint_best.pth", map_location="cpu", weights_only=False)
    values = [v for _, v in history]
    assert best["current_epoch"] - 1 == history[values.index(max(values))][0]  # saved at the best epoch
    assert all(0.0 <= v <= 1.0 for v in values)


def test_evaluate_compare_per_label_with_tumour_detection(study):
    root, raw, env = study["root"], study["raw"], study["env"]
    run_cli("nnunet-swin", "evaluate", str(raw / "labelsTs"), str(root / "pred_final"), "-o", str(root / "eval"),
            "--tumor-labels", "1", "-np", "1", "--quiet", env=env)
    per_case = pd.read_csv(root / "eval" / "metrics_per_case.csv")
    assert sorted(per_case["label"].unique().tolist()) == [1, 2, 3]
    assert per_case.groupby("label")["surface_dice"].count().to_dict() == {1: 2, 2: 2, 3: 2}
    assert per_case.loc[per_case["label"] == 1, "detected"].notna().all()
    assert per_case.loc[per_case["label"] != 1, "detected"].isna().all()
    assert {"iou", "accuracy", "mIoU", "mDice", "mAcc"} <= set(per_case.columns)
    summary = json.loads((root / "eval" / "summary_extended.json").read_text())
    assert summary["multiclass"]["background"] == "excluded"
    assert set(summary["multiclass"]["per_class"]) == {"1", "2", "3"}
    run_cli("nnunet-swin", "compare", str(raw / "labelsTs"), str(root / "pred_final"), str(root / "pred_best"),
            "--names", "final", "best", "-o", str(root / "cmp"), "--tumor-labels", "1", "-np", "1", "--quiet",
            "--no-figures", env=env)
    table = pd.read_csv(root / "cmp" / "comparison_table.csv")
    assert set(table["label"]) == {1, 2, 3}
    assert table.loc[table["label"] == 1, "detection_n"].tolist() == [2, 2]
    assert table.loc[table["label"] != 1, "detection_n"].eq(0).all()
    multiclass = pd.read_csv(root / "cmp" / "comparison_multiclass.csv")
    assert set(multiclass["score"]) == {"mIoU", "mDice", "mAcc"}


def test_subtypes_on_the_tumour_label_of_a_multi_label_dataset(study):
    root, raw, env = study["root"], study["raw"], study["env"]
    run_cli("nnunet-swin", "subtypes", "--train-images", str(raw / "imagesTr"), "--train-labels",
            str(raw / "labelsTr"), "--test-images", str(raw / "imagesTs"), "--test-labels", str(raw / "labelsTs"),
            "--tumor-labels", "1", "--k", "2", "-o", str(root / "subtypes"), "--quiet", env=env)
    test = pd.read_csv(root / "subtypes" / "subtypes_test.csv")
    summary = json.loads((root / "subtypes" / "subtypes_summary.json").read_text())
    assert summary["tumor_labels"] == [1] and summary["k"] == 2
    assert len(test) == 2 and set(test["subtype"]) <= set(summary["names"])
