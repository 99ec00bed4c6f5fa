"""Tiny nnU-Net raw datasets written with SimpleITK, to be broken one way per test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (6, 12, 12)          # (Z, Y, X)
SPACING_XYZ = (1.0, 1.0, 3.0)


def write_image(path: Path, array: np.ndarray, spacing_xyz=SPACING_XYZ) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing_xyz[: image.GetDimension()]))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def case_arrays(i: int, shape=SHAPE):
    rng = np.random.default_rng(i)
    image = rng.normal(100, 10, shape).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    label[2:4, 4:8, 4:8] = 1
    return image, label


def write_raw_dataset(raw: Path, dataset_id: int = 601, n_cases: int = 5, labels=None, channels=("T2",)) -> Path:
    """``Dataset{id}_Bad`` with ``n_cases`` good cases ``case_000..``; returns the dataset folder."""
    folder = raw / f"Dataset{dataset_id:03d}_Bad"
    for i in range(n_cases):
        image, label = case_arrays(i)
        for c in range(len(channels)):
            write_image(folder / "imagesTr" / f"case_{i:03d}_{c:04d}.nii.gz", image + c)
        write_image(folder / "labelsTr" / f"case_{i:03d}.nii.gz", label)
    write_dataset_json(folder, n_cases, labels=labels, channels=channels)
    return folder


def write_dataset_json(folder: Path, n_cases: int, labels=None, channels=("T2",), **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": labels or {"background": 0, "tumour": 1},
        "numTraining": n_cases, "file_ending": ".nii.gz", **extra}))
