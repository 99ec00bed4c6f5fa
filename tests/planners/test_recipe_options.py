"""Planner options where the paper's recipe and nnU-Net's defaults differ: resampling, normalisation, tumour labels."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_swin.errors import UserError
from nnunet_swin.planners.swin_planner import SMITPlanner
from test_planner import cohort_dataset  # noqa: F401  (fixture)


def _plans(cohort_dataset, **options):
    SMITPlanner(900, **options).plan_experiment()
    return json.loads((cohort_dataset / "nnUNetSMITPlans.json").read_text())


def test_default_resampling_is_linear_in_3d_and_recorded(cohort_dataset):
    plans = _plans(cohort_dataset)
    for cfg in plans["configurations"].values():
        assert cfg["resampling_fn_data"] == cfg["resampling_fn_seg"] == "resample_data_or_seg_to_shape"  # stock
        assert cfg["resampling_fn_data_kwargs"] == {"is_seg": False, "order": 1, "order_z": 1,
                                                    "force_separate_z": False}
        assert cfg["resampling_fn_seg_kwargs"] == {"is_seg": True, "order": 0, "order_z": 0,
                                                   "force_separate_z": False}  # the paper: nearest neighbour
        assert cfg["resampling_fn_probabilities_kwargs"]["force_separate_z"] is False
        assert cfg["swin"]["resampling"] == "paper"
        assert cfg["normalization_schemes"] == ["ZScoreNormalization"]
        assert cfg["swin"]["normalization"]["mode"] == "zscore" and cfg["swin"]["tumor_labels"] is None


def test_nnunet_resampling_and_rescale01_are_options(cohort_dataset):
    linear = _plans(cohort_dataset, resampling="linear")["configurations"]["3d_fullres"]
    assert linear["resampling_fn_seg_kwargs"]["order"] == 1 and linear["swin"]["resampling"] == "linear"
    plans = _plans(cohort_dataset, resampling="nnunet", normalization="rescale01", tumor_labels=[1])
    cfg = plans["configurations"]["3d_fullres"]
    assert cfg["resampling_fn_data_kwargs"] == {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    assert cfg["normalization_schemes"] == ["RescaleTo01Normalization"] and cfg["use_mask_for_norm"] == [False]
    assert cfg["swin"]["normalization"]["input_range"] == "[0, 1]" and cfg["swin"]["tumor_labels"] == [1]


@pytest.mark.parametrize("options, message", [({"resampling": "cubic"}, "unknown resampling"),
                                              ({"normalization": "ct"}, "unknown normalization"),
                                              ({"tumor_labels": [2]}, "not foreground")])
def test_bad_options_are_refused(cohort_dataset, options, message):
    with pytest.raises(UserError, match=message):
        SMITPlanner(900, **options)
    assert not (cohort_dataset / "nnUNetSMITPlans.json").exists()


def _preprocess_thick_slice_case(cohort_dataset, tmp_path, resampling):
    """Stock DefaultPreprocessor on a 5-slice, 4 mm volume whose slices have distinct intensities."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    _plans(cohort_dataset, resampling=resampling)
    volume = np.repeat(np.array([0.0, 10.0, 30.0, 60.0, 100.0], np.float32)[:, None, None], 24, 1)
    volume = np.repeat(volume, 24, 2) + np.linspace(0, 1, 24, dtype=np.float32)[None, None, :]
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((1.0, 1.0, 4.0))  # (x, y, z)
    sitk.WriteImage(image, str(tmp_path / "thick_0000.nii.gz"))
    pm = PlansManager(str(cohort_dataset / "nnUNetSMITPlans.json"))
    cm = pm.get_configuration("3d_fullres")
    dataset_json = {"channel_names": {"0": "T2"}, "labels": {"background": 0, "tumour": 1}, "file_ending": ".nii.gz"}
    data, _, _ = cm.preprocessor_class(verbose=False).run_case([str(tmp_path / "thick_0000.nii.gz")], None, pm, cm,
                                                               dataset_json)
    return data[0]


def test_thick_slices_are_interpolated_not_repeated(cohort_dataset, tmp_path):
    data = _preprocess_thick_slice_case(cohort_dataset, tmp_path, "paper")
    assert data.shape[0] == 20                              # 5 slices x 4 mm at 1 mm
    means = data.mean(axis=(1, 2))
    # every slice but the outermost (linear interpolation holds the edge value there) is its own interpolation
    # between two input slices, so the means rise strictly with the monotone input
    assert np.all(np.diff(means[1:-1]) > 0) and len(np.unique(np.round(means, 4))) == 18
    repeated = _preprocess_thick_slice_case(cohort_dataset, tmp_path, "nnunet").mean(axis=(1, 2))
    assert len(np.unique(np.round(repeated, 4))) == 5        # nnU-Net's separate z copies each slice 4 times
