"""Test helper: a tiny trained-model folder of ours and a raw image folder, built from scratch."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

NETWORK = "nnunet_swin.networks.segmentation.SwinSegmentationNetwork"


def plans_dict(patch=(32, 64, 64), network=NETWORK, preset="smit_tiny") -> dict:
    from nnunet_swin.networks.presets import get_preset

    arch = get_preset(preset)
    arch["strides"] = [[2, 2, 2]] * 5
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    return {
        "dataset_name": "Dataset990_Tiny", "plans_name": "nnUNetSMITPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [20, 40, 40],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": {
            "data_identifier": "nnUNetSMITPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": list(patch), "median_image_size_in_voxels": [20, 40, 40],
            "spacing": [1.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"],
            "use_mask_for_norm": [False], "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": resampling,
            "resampling_fn_seg_kwargs": {**resampling, "is_seg": True, "order": 1},
            "resampling_fn_probabilities_kwargs": {**resampling, "order": 1},
            "architecture": {"network_class_name": network, "arch_kwargs": arch, "_kw_requires_import": []},
            "batch_dice": False}},
        "experiment_planner_used": "SMITPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 5.0, "mean": 1.0, "median": 1.0, "min": -5.0, "percentile_00_5": -3.0, "percentile_99_5": 3.0,
            "std": 1.0}},
    }


DATASET_JSON = {"channel_names": {"0": "T2"}, "labels": {"background": 0, "tumour": 1}, "numTraining": 4,
                "file_ending": ".nii.gz"}


def write_model_folder(root: Path, seed: int = 0, patch=(32, 64, 64), network=NETWORK,
                       preset="smit_tiny", trainer: str = "nnUNetTrainer") -> Path:
    """root/Dataset990_Tiny/<trainer>__nnUNetSMITPlans__3d_fullres with plans, dataset.json and fold_0 weights, as
    nnU-Net's trainer saves them (``trainer_name``, ``init_args``, ``inference_allowed_mirroring_axes``)."""
    from nnunet_swin.networks import SwinSegmentationNetwork

    folder = root / "Dataset990_Tiny" / f"{trainer}__nnUNetSMITPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    plans = plans_dict(patch, network, preset)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
    torch.manual_seed(seed)
    arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    net = SwinSegmentationNetwork(input_channels=1, num_classes=2, deep_supervision=False, **arch)
    torch.save({"network_weights": net.state_dict(), "trainer_name": trainer,
                "init_args": {"configuration": "3d_fullres"}, "inference_allowed_mirroring_axes": (0, 1, 2)},
               folder / "fold_0" / "checkpoint_final.pth")
    return folder


def write_images(folder: Path, z_extents=(12, 20, 28, 40), size=70, channels=1, labels: Path | None = None,
                 seed: int = 0) -> list[str]:
    """Raw NIfTI cases case_000.. with the given z extents (1 mm spacing), optional labels folder."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = []
    for i, z in enumerate(z_extents):
        case = f"case_{i:03d}"
        ids.append(case)
        zz, yy, xx = np.indices((z, size, size))
        tumour = ((zz - z / 2) ** 2 + (yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (min(z, size) / 4) ** 2
        for c in range(channels):
            img = 100 + 20 * rng.standard_normal((z, size, size)) + (150 if i % 2 else 30) * tumour
            sitk.WriteImage(sitk.GetImageFromArray(img.astype(np.float32)), str(folder / f"{case}_{c:04d}.nii.gz"))
        if labels is not None:
            labels.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.GetImageFromArray(tumour.astype(np.uint8)), str(labels / f"{case}.nii.gz"))
    return ids
