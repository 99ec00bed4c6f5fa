"""A checkpoint written by `nnunet-swin pretrain` trains SwinACTTrainer_smoke through stock nnU-Net with 0 missing
encoder keys (the same chain as tests/trainers/test_end_to_end.py)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
from nnunet_swin.pretraining.data import discover_images
from nnunet_swin.pretraining.trainer import FINAL, Pretrainer

from pretraining_fixtures import tiny_config

pytestmark = pytest.mark.slow
DATASET = 932


def _tool(name):
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else shutil.which(name)


def _run(cmd, env, timeout=400):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def test_swin_act_trainer_smoke_loads_the_pretrained_teacher(ct_folder, tmp_path):
    pre_out = tmp_path / "pt"
    Pretrainer(tiny_config(epochs=1, iterations_per_epoch=1), pre_out, discover_images(str(ct_folder))[0],
               device="cpu", progress=False, log_to_console=False).run()
    root = tmp_path / "nn"
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "nnUNet_compile": "f", "nnUNet_swin_pretrained": str(pre_out / FINAL)}
    ext = _run([sys.executable, "-m", "nnunet_swin", "env", "--ext-trainer-dir"], env).strip().splitlines()
    env["nnUNet_extTrainer"] = ext[-1]
    make_demo_dataset(root / "raw", DATASET, spec=SyntheticSpec(num_train=4, num_test=0, fov_mm=64, z_median_mm=40.0,
                                                                   z_iqr_mm=(32.0, 48.0), short_share=0.0),
                      progress=False)
    _run([sys.executable, "-m", "nnunet_swin", "plan_and_preprocess", "-d", str(DATASET), "-pl", "SMITPlanner",
          "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-cubic_size", "64", "-c", "3d_fullres", "-npfp",
          "1", "-np", "1", "--quiet"], env)
    pre = next((root / "pre").glob(f"Dataset{DATASET}_*"))
    cases = sorted(p.name[:-len(".pkl")] for p in (pre / "nnUNetSMITPlans_3d_fullres").glob("*.pkl"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
    log = _run([_tool("nnUNetv2_train"), str(DATASET), "3d_fullres", "0", "-tr", "SwinACTTrainer_smoke", "-p",
                "nnUNetSMITPlans", "-device", "cpu"], env)
    assert "loaded smit_tiny encoder from an `nnunet-swin pretrain` run (SMIT, " in log and str(pre_out / FINAL) in log
    assert "CT-pretrained" not in log
    report = next((root / "res").rglob("pretrained_encoder_report.txt")).read_text()
    assert "76 matched" in report and "0 missing" in report and "0 unexpected" in report
