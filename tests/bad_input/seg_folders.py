"""Small reference / prediction folders of 3D label maps (SimpleITK), for evaluate and compare."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (8, 16, 16)


def write_seg(path: Path, array: np.ndarray, spacing_xyz=(1.0, 1.0, 2.0)) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(spacing_xyz[: image.GetDimension()]))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def blob(shift: int = 0, label: int = 1, dtype=np.uint8) -> np.ndarray:
    seg = np.zeros(SHAPE, dtype)
    seg[2:6, 4 + shift:10 + shift, 4:10] = label
    return seg


def write_folders(root: Path, n: int = 4, models=("modelA", "modelB"), labels=None) -> Path:
    """``root/ref`` and one folder per model with ``case_0..`` (model k shifted by k voxels), dataset.json beside
    ``ref``."""
    for i in range(n):
        write_seg(root / "ref" / f"case_{i}.nii.gz", blob())
        for k, model in enumerate(models):
            write_seg(root / model / f"case_{i}.nii.gz", blob(shift=k + (i % 2)))
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T2"}, "labels": labels or {"background": 0, "tumour": 1}, "numTraining": n,
        "file_ending": ".nii.gz"}))
    return root
