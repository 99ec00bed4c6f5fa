"""The planners on a fingerprint that mimics the paper's cohort, and their refusals of bad input."""
import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import stats

from nnunet_swin.errors import UserError
from nnunet_swin.planners.swin_planner import SMITPlanner, SwinUNETRPlanner


def _cohort_fingerprint(n=169, seed=0):
    """169 thick-slice T2w scans: in-plane 0.43 [0.39-0.47] mm, slices 3-4 mm, ~200 mm FOV and a z-extent after
    resampling to 1 mm of median 93 [70-120] mm (log-normal quantiles); fingerprint axis order (z, y, x)."""
    rng = np.random.default_rng(seed)
    p = (np.arange(n) + 0.5) / n
    z_mm = np.exp(np.log(93) + (np.log(120) - np.log(70)) / 1.349 * stats.norm.ppf(p))
    inplane = rng.uniform(0.39, 0.47, n)
    thick = rng.uniform(3.0, 4.0, n)
    spacings = [[float(t), float(s), float(s)] for t, s in zip(thick, inplane)]
    shapes = [[int(round(z / t)), int(round(200 / s)), int(round(200 / s))] for z, t, s in zip(z_mm, thick, inplane)]
    return {
        "spacings": spacings, "shapes_after_crop": shapes, "median_relative_size_after_cropping": 1.0,
        "foreground_intensity_properties_per_channel": {"0": {"mean": 1.0, "median": 1.0, "std": 1.0, "min": 0.0,
                                                              "max": 2.0, "percentile_99_5": 2.0,
                                                              "percentile_00_5": 0.0}},
    }


@pytest.fixture
def cohort_dataset(nnunet_dirs):
    raw = nnunet_dirs["nnUNet_raw"] / "Dataset900_Cohort"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    img = sitk.GetImageFromArray(np.zeros((4, 8, 8), np.float32))
    sitk.WriteImage(img, str(raw / "imagesTr" / "c_000_0000.nii.gz"))
    sitk.WriteImage(sitk.Cast(img, sitk.sitkUInt8), str(raw / "labelsTr" / "c_000.nii.gz"))
    (raw / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T2"},
                                                  "labels": {"background": 0, "tumour": 1},
                                                  "numTraining": 169, "file_ending": ".nii.gz"}))
    pre = nnunet_dirs["nnUNet_preprocessed"] / "Dataset900_Cohort"
    pre.mkdir()
    (pre / "dataset_fingerprint.json").write_text(json.dumps(_cohort_fingerprint()))
    return pre


@pytest.mark.parametrize("planner, cube, name", [(SMITPlanner, 128, "nnUNetSMITPlans"),
                                                 (SwinUNETRPlanner, 96, "nnUNetSwinUNETRPlans")])
def test_paper_cohort_gives_128x128x64(cohort_dataset, planner, cube, name):
    plans = planner(900).plan_experiment()
    saved = json.loads((cohort_dataset / f"{name}.json").read_text())
    assert saved["configurations"].keys() == plans["configurations"].keys() == {"3d_fullres", "3d_cubic"}
    act, cubic = saved["configurations"]["3d_fullres"], saved["configurations"]["3d_cubic"]
    assert act["patch_size"] == [64, 128, 128]          # (Z, Y, X): 128 x 128 x 64
    assert cubic["patch_size"] == [cube] * 3
    assert act["spacing"] == [1.0, 1.0, 1.0] and act["batch_size"] == 2
    assert saved["transpose_forward"] == [0, 1, 2]
    pf_act, pf_cubic = act["swin"]["padding_fraction"]["z"], cubic["swin"]["padding_fraction"]["z"]
    assert pf_act["mean_pf"] <= 0.05 < pf_cubic["mean_pf"]
    assert 0 < pf_act["share_padded"] < pf_cubic["share_padded"]
    assert pf_act["num_cases"] == 169
    crops = {row["crop"]: row["mean_pf"] for row in act["swin"]["z_crop_candidates"]}
    assert crops[64] <= 0.05 < crops[96]
    arch = act["architecture"]
    assert arch["network_class_name"] == "nnunet_swin.networks.segmentation.SwinSegmentationNetwork"
    assert arch["arch_kwargs"]["backbone"] == ("smit" if planner is SMITPlanner else "swin_unetr")
    assert act["preprocessor_name"] == "DefaultPreprocessor"
    assert act["normalization_schemes"] == ["ZScoreNormalization"]
    assert act["resampling_fn_data"] == "resample_data_or_seg_to_shape"
    window_pad = [s["window_padding_fraction"] for s in act["swin"]["window_padding"]]
    if planner is SMITPlanner:
        assert window_pad == [0, 0, 0, 0]
    else:
        assert all(w > 0 for w in window_pad)
        # along z the window-7 artifact appears in stages 0-2 only (32, 16, 8 -> 35, 21, 14); stage 3 shrinks to 4
        z_padded = [(s["feature_size"][0], s["padded_size"][0]) for s in act["swin"]["window_padding"]]
        assert z_padded == [(32, 35), (16, 21), (8, 14), (4, 4)]


def test_plans_are_written_atomically_and_keep_other_configurations(cohort_dataset):
    path = cohort_dataset / "nnUNetSMITPlans.json"
    path.write_text(json.dumps({"configurations": {"my_custom": {"inherits_from": "3d_fullres"}}}))
    SMITPlanner(900).plan_experiment()
    saved = json.loads(path.read_text())
    assert "my_custom" in saved["configurations"] and "3d_fullres" in saved["configurations"]
    assert not list(cohort_dataset.glob(".plans.*"))


@pytest.mark.parametrize("spacing", [[0, 1, 1], [1, 1], [-1, 1, 1], [1, 1, 500], [float("nan"), 1, 1]])
def test_nonsensical_target_spacing_is_refused_before_writing(cohort_dataset, spacing):
    with pytest.raises(UserError, match="target spacing"):
        SMITPlanner(900, overwrite_target_spacing=spacing).plan_experiment()
    assert not (cohort_dataset / "nnUNetSMITPlans.json").exists()


def test_override_spacing_and_options(cohort_dataset):
    plans = SMITPlanner(900, overwrite_target_spacing=[2.0, 2.0, 2.0], inplane_patch=(64, 64),
                        pf_threshold=0.2, batch_size=4).plan_experiment()
    act = plans["configurations"]["3d_fullres"]
    assert act["spacing"] == [2.0, 2.0, 2.0]
    assert act["patch_size"][1:] == [64, 64] and act["batch_size"] == 4
    assert act["patch_size"][0] % 32 == 0


def test_volumes_smaller_than_divisor_are_refused(cohort_dataset):
    with pytest.raises(UserError, match="smaller than the backbone's size divisor"):
        SMITPlanner(900, overwrite_target_spacing=[10.0, 10.0, 10.0]).plan_experiment()
    assert not (cohort_dataset / "nnUNetSMITPlans.json").exists()


def test_2d_data_is_refused(cohort_dataset):
    fp = json.loads((cohort_dataset / "dataset_fingerprint.json").read_text())
    fp["shapes_after_crop"] = [[1, s[1], s[2]] for s in fp["shapes_after_crop"]]
    fp["spacings"] = [[999.0, s[1], s[2]] for s in fp["spacings"]]
    (cohort_dataset / "dataset_fingerprint.json").write_text(json.dumps(fp))
    with pytest.raises(UserError, match="2D"):
        SMITPlanner(900).plan_experiment()


def test_inplane_patch_too_small_for_the_bottleneck_is_refused(cohort_dataset):
    with pytest.raises(UserError, match="at least 64"):
        SMITPlanner(900, inplane_patch=(32, 32))


def test_wrong_backbone_family_is_refused(cohort_dataset):
    with pytest.raises(UserError, match="swin_unetr"):
        SMITPlanner(900, backbone="swin_unetr")
