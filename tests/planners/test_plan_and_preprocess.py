"""`nnunet-swin plan_and_preprocess` end to end, then nnU-Net's own PlansManager and stock nnUNetv2_preprocess."""
import json

import numpy as np
import pytest

from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset


def _check_plans_with_nnunet(pre, plans_name):
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    pm = PlansManager(str(pre / f"{plans_name}.json"))
    assert set(pm.available_configurations) == {"3d_fullres", "3d_cubic"}
    act = pm.get_configuration("3d_fullres")
    assert act.network_arch_class_name == "nnunet_swin.networks.segmentation.SwinSegmentationNetwork"
    assert act.preprocessor_class.__name__ == "DefaultPreprocessor"
    assert all(p % 32 == 0 for p in act.patch_size)
    assert pm.get_configuration("3d_cubic").data_identifier == act.data_identifier
    return pm


@pytest.mark.slow
def test_synthetic_dataset_plans_and_stock_preprocess(nnunet_dirs, run_cli):
    make_demo_dataset(nnunet_dirs["nnUNet_raw"], 511, spec=SyntheticSpec(num_train=4, num_test=1, fov_mm=64),
                      progress=False)
    run_cli("nnunet-swin", "plan_and_preprocess", "-d", "511", "-pl", "SMITPlanner", "-backbone", "smit_tiny",
            "-np", "1", "-npfp", "1", "--quiet")
    pre = nnunet_dirs["nnUNet_preprocessed"] / "Dataset511_SyntheticRectum"
    pm = _check_plans_with_nnunet(pre, "nnUNetSMITPlans")
    act = pm.get_configuration("3d_fullres")
    assert act.patch_size[1:] == [64, 64]                    # FOV 64 mm: in-plane reduced from 128
    data = sorted((pre / "nnUNetSMITPlans_3d_fullres").glob("*.b2nd"))
    assert len(data) == 8                                    # image + seg per case
    assert (pre / "gt_segmentations").is_dir()
    # stock nnU-Net preprocesses our plans by itself
    import shutil
    shutil.rmtree(pre / "nnUNetSMITPlans_3d_fullres")
    run_cli("nnUNetv2_preprocess", "-d", "511", "-plans_name", "nnUNetSMITPlans", "-c", "3d_fullres", "-np", "1")
    assert len(sorted((pre / "nnUNetSMITPlans_3d_fullres").glob("*.b2nd"))) == 8


@pytest.mark.slow
def test_real_brain_mri_swin_unetr(nnunet_dirs, run_cli, write_real_dataset):
    write_real_dataset(nnunet_dirs["nnUNet_raw"], 502, copies=2)
    out = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "502", "-pl", "SwinUNETRPlanner", "-np", "1",
                  "-npfp", "1", "--quiet", "--verify_dataset_integrity")
    assert "window padding" in out.stdout
    pre = nnunet_dirs["nnUNet_preprocessed"] / "Dataset502_RealBrain"
    pm = _check_plans_with_nnunet(pre, "nnUNetSwinUNETRPlans")
    plans = json.loads((pre / "nnUNetSwinUNETRPlans.json").read_text())
    # 25 slices of 6.5 mm -> 162 mm of z at 1 mm: z crop capped at the in-plane crop (128), no z padding
    act = pm.get_configuration("3d_fullres")
    assert act.patch_size == [128, 128, 128]
    assert plans["transpose_forward"] == [0, 1, 2]
    assert plans["configurations"]["3d_cubic"]["patch_size"] == [96, 96, 96]
    assert plans["configurations"]["3d_fullres"]["swin"]["padding_fraction"]["z"]["mean_pf"] == 0.0
    import blosc2
    seg = blosc2.open(str(pre / "nnUNetSwinUNETRPlans_3d_fullres" / "brain_000_seg.b2nd"))[:]
    assert seg.shape[1] >= 150 and np.unique(seg).tolist() in ([0, 1], [-1, 0, 1])


def _assert_one_line_error(proc, text):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("nnunet-swin")]
    assert len(lines) == 1 and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_dataset_id(nnunet_dirs, run_cli):
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "777", check=False)
    _assert_one_line_error(proc, "unknown dataset id 777")
    assert not any(nnunet_dirs["nnUNet_preprocessed"].iterdir())


def test_invalid_dataset_json(nnunet_dirs, run_cli):
    folder = nnunet_dirs["nnUNet_raw"] / "Dataset503_Broken"
    folder.mkdir()
    (folder / "dataset.json").write_text('{"channel_names": {"0": "T2"}, "labels": ')
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "503", check=False)
    _assert_one_line_error(proc, "invalid dataset.json")
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T2"}, "labels": {"background": 0},
                                                     "numTraining": 1, "file_ending": ".nii.gz"}))
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "503", check=False)
    _assert_one_line_error(proc, "no foreground label")
    assert not any(nnunet_dirs["nnUNet_preprocessed"].iterdir())


def test_unknown_planner_and_misplaced_options(nnunet_dirs, run_cli):
    make_demo_dataset(nnunet_dirs["nnUNet_raw"], 504, spec=SyntheticSpec(num_train=2, num_test=0, fov_mm=48),
                      progress=False)
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "504", "-pl", "NoSuchPlanner", check=False)
    _assert_one_line_error(proc, "unknown planner 'NoSuchPlanner'")
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "504", "-pl", "ExperimentPlanner",
                   "-backbone", "smit", check=False)
    _assert_one_line_error(proc, "only apply to")
    proc = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "504", "-overwrite_target_spacing", "1", "x", "1",
                   check=False)
    _assert_one_line_error(proc, "target spacing")
    assert not any(nnunet_dirs["nnUNet_preprocessed"].iterdir())
