"""End to end on CPU with stock nnU-Net commands: synthetic data -> nnunet-swin plan_and_preprocess ->
nnUNetv2_train (SwinACTTrainer_smoke, stand-in pretrained encoder) -> --c resume -> nnUNetv2_predict."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
from nnunet_swin.networks import SwinEncoder
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.trainers.schedule import warmup_cosine_factor
from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint

pytestmark = pytest.mark.slow

DATASET = 931
TRAINER = "SwinACTTrainer_smoke"


def _tool(name):
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else shutil.which(name)


def _run(cmd, env, timeout=300):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "nnUNet_compile": "f", "nnUNet_swin_pretrained": str(root / "weights")}
    ext = _run([sys.executable, "-m", "nnunet_swin.cli.main", "env", "--ext-trainer-dir"], env).strip().splitlines()
    env["nnUNet_extTrainer"] = ext[-1]
    make_demo_dataset(root / "raw", DATASET, spec=SyntheticSpec(num_train=4, num_test=2, fov_mm=64, z_median_mm=40.0,
                                                                   z_iqr_mm=(32.0, 48.0), short_share=0.0), progress=False)
    _run([sys.executable, "-m", "nnunet_swin.cli.main", "plan_and_preprocess", "-d", str(DATASET), "-pl",
          "SMITPlanner", "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-cubic_size", "64", "-c",
          "3d_fullres", "-npfp", "1", "-np", "1", "--quiet"], env)
    pre = next((root / "pre").glob(f"Dataset{DATASET}_*"))
    cases = sorted(p.name[:-len(".pkl")] for p in (pre / "nnUNetSMITPlans_3d_fullres").glob("*.pkl"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
    plans = json.loads((pre / "nnUNetSMITPlans.json").read_text())
    write_standin_checkpoint(plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"],
                             root / "weights" / "smit_tiny.pth")
    train = [_tool("nnUNetv2_train"), str(DATASET), "3d_fullres", "0", "-tr", TRAINER, "-p", "nnUNetSMITPlans",
             "-device", "cpu"]
    first_log = _run(train, env)
    out = root / "res" / pre.name / f"{TRAINER}__nnUNetSMITPlans__3d_fullres" / "fold_0"
    return {"root": root, "env": env, "pre": pre, "out": out, "train": train, "first_log": first_log,
            "raw": next((root / "raw").glob(f"Dataset{DATASET}_*"))}


def test_training_ran_with_the_pretrained_encoder_and_the_recipe(pipeline):
    out, log = pipeline["out"], pipeline["first_log"]
    assert (out / "checkpoint_final.pth").is_file() and (out / "validation" / "summary.json").is_file()
    # every encoder key of the preset is matched as it is (derived index buffers are not state)
    kw = get_preset("smit_tiny")
    with torch.device("meta"):
        encoder = SwinEncoder(1, **{k: v for k, v in kw.items() if k in ENCODER_KEYS})
    n_keys = len([k for k in encoder.state_dict() if not k.endswith("relative_position_index")])
    coverage = f"format smit: {n_keys} matched, 0 adapted, 0 missing, 0 unexpected, 0 shape-mismatched"
    assert "loaded pretrained smit_tiny encoder from" in log and coverage in log
    assert coverage in (out / "pretrained_encoder_report.txt").read_text()
    ckpt = torch.load(out / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["trainer_name"] == TRAINER and tuple(ckpt["inference_allowed_mirroring_axes"]) == (2,)
    assert ckpt["optimizer_state"]["param_groups"][0]["weight_decay"] == 1e-5
    lrs = ckpt["logging"]["lrs"]
    assert lrs == pytest.approx([3e-4 * warmup_cosine_factor(e, 1, 3) for e in range(3)])
    assert "flips (training and test-time) restricted to the left-right axis: (2,)" in log


def test_resume_with_c_continues_on_the_same_learning_rate_curve(pipeline):
    out = pipeline["out"]
    # simulate an interruption after epoch 0: what checkpoint_latest.pth would hold at that point
    ckpt = torch.load(out / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    ckpt["current_epoch"] = 1
    ckpt["logging"] = {k: v[:1] for k, v in ckpt["logging"].items()}
    torch.save(ckpt, out / "checkpoint_latest.pth")
    (out / "checkpoint_final.pth").unlink()
    log = _run(pipeline["train"] + ["--c"], pipeline["env"])
    assert "smit_tiny encoder from" not in log  # resuming never reloads the pretrained encoder
    epochs = re.findall(r"Epoch (\d+)\n.*Current learning rate: ([0-9.e-]+)", log)
    assert [int(e) for e, _ in epochs] == [1, 2]
    resumed = torch.load(out / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert resumed["logging"]["lrs"][1:] == pytest.approx([3e-4 * warmup_cosine_factor(e, 1, 3) for e in (1, 2)])


def test_stock_predict_writes_predictions_with_the_input_geometry(pipeline):
    raw, pred = pipeline["raw"], pipeline["root"] / "pred"
    _run([_tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(pred), "-d", str(DATASET), "-c",
          "3d_fullres", "-f", "0", "-tr", TRAINER, "-p", "nnUNetSMITPlans", "-device", "cpu", "-npp", "1", "-nps",
          "1"], pipeline["env"])
    images = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))
    assert len(images) == 2
    for image_file in images:
        image = sitk.ReadImage(str(image_file))
        seg = sitk.ReadImage(str(pred / image_file.name.replace("_0000", "")))
        assert seg.GetSize() == image.GetSize()
        assert np.allclose(seg.GetSpacing(), image.GetSpacing()) and np.allclose(seg.GetOrigin(), image.GetOrigin())
        assert np.allclose(seg.GetDirection(), image.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(seg))) <= {0, 1}
