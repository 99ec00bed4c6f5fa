"""Small in-memory plans for trainer unit tests (no preprocessing, stand-in network where the real one is not needed)."""
import copy
import json

import pytest

from nnunet_swin.networks.presets import NETWORK_CLASS_NAME, get_preset


def make_plans(network_class_name=NETWORK_CLASS_NAME, transpose_forward=(0, 1, 2), patch_size=(32, 64, 64)):
    arch_kwargs = {**get_preset("smit_tiny"), "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]]}
    fullres = {
        "data_identifier": "nnUNetSMITPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(patch_size),
        "median_image_size_in_voxels": [60, 96, 96],
        "spacing": [1.0, 1.0, 1.0],
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "architecture": {"network_class_name": network_class_name, "arch_kwargs": arch_kwargs,
                         "_kw_requires_import": []},
        "batch_dice": False,
        "swin": {"kind": "anisotropic"},
    }
    return {
        "dataset_name": "Dataset987_TrainerUnit",
        "plans_name": "nnUNetSMITPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [60, 96, 96],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": list(transpose_forward),
        "transpose_backward": [list(transpose_forward).index(i) for i in range(3)],
        "configurations": {
            "3d_fullres": fullres,
            "3d_cubic": {"inherits_from": "3d_fullres", "patch_size": [64, 64, 64], "swin": {"kind": "cubic"},
                         "data_identifier": "nnUNetSMITPlans_3d_cubic"},
        },
        "experiment_planner_used": "SMITPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {"max": 3.0, "mean": 0.0, "median": 0.0, "min": -3.0,
                                                               "percentile_00_5": -2.5, "percentile_99_5": 2.5,
                                                               "std": 1.0}},
    }


DATASET_JSON = {"channel_names": {"0": "T2"}, "labels": {"background": 0, "tumour": 1}, "numTraining": 4,
                "file_ending": ".nii.gz"}


@pytest.fixture
def nnunet_dirs(tmp_path, monkeypatch):
    """nnUNet_* variables pointing into tmp_path, with an (empty) blosc2-looking preprocessed folder."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    for config in ("nnUNetSMITPlans_3d_fullres", "nnUNetSMITPlans_3d_cubic"):
        folder = tmp_path / "nnUNet_preprocessed" / "Dataset987_TrainerUnit" / config
        folder.mkdir(parents=True)
        for case in range(5):
            (folder / f"case_{case:03d}.b2nd").write_bytes(b"")
    splits = [{"train": [f"case_{c:03d}" for c in range(5) if c != fold], "val": [f"case_{fold:03d}"]}
              for fold in range(5)]
    (tmp_path / "nnUNet_preprocessed" / "Dataset987_TrainerUnit" / "splits_final.json").write_text(json.dumps(splits))
    monkeypatch.delenv("nnUNet_swin_pretrained", raising=False)
    return tmp_path


@pytest.fixture
def stand_in_network(monkeypatch):
    """Replace the network the recipe builds by a 1x1x1 convolution (unit tests that do not need the Swin)."""
    import torch
    from nnunet_swin.trainers import recipe

    def build(name, kwargs, req_import, in_ch, out_ch, allow_init=True, deep_supervision=False):
        assert deep_supervision is False
        return torch.nn.Sequential(torch.nn.Conv3d(in_ch, 4, 1), torch.nn.Conv3d(4, out_ch, 1))

    monkeypatch.setattr(recipe, "get_network_from_plans", build)


def new_trainer(cls, plans=None, configuration="3d_fullres", dataset_json=None, continue_training=False):
    import torch
    plans = copy.deepcopy(plans if plans is not None else make_plans())
    plans["continue_training"] = continue_training
    dataset_json = json.loads(json.dumps(dataset_json or DATASET_JSON))
    return cls(plans=plans, configuration=configuration, fold=0, dataset_json=dataset_json,
               device=torch.device("cpu"))


@pytest.fixture
def plans_factory():
    return make_plans


@pytest.fixture
def trainer_factory(nnunet_dirs):
    return new_trainer
