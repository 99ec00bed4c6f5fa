"""Example-slice figure: test image with reference and predicted tumour outlines."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnunet_swin.io import save_figure


def _largest_slice(mask_zyx: np.ndarray) -> int:
    areas = mask_zyx.reshape(mask_zyx.shape[0], -1).sum(1)
    return int(np.argmax(areas)) if areas.any() else mask_zyx.shape[0] // 2


def plot_examples(cases: list[tuple[str, Path, Path, Path]], path: str | os.PathLike, title: str = "") -> Path:
    """One panel per case ``(name, image_file, reference_file, prediction_file)``: the axial slice (fixed Z of the
    (Z, Y, X) array) with the largest reference area; reference outline green, prediction red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    n = max(1, len(cases))
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.6), squeeze=False)
    for ax, (name, image_file, ref_file, pred_file) in zip(axes[0], cases):
        image = sitk.GetArrayFromImage(sitk.ReadImage(str(image_file)))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(ref_file))) > 0
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_file))) > 0
        z = _largest_slice(ref)
        spacing = sitk.ReadImage(str(image_file)).GetSpacing()  # (x, y, z)
        ax.imshow(image[z], cmap="gray", aspect=spacing[1] / spacing[0])
        if ref[z].any():
            ax.contour(ref[z], levels=[0.5], colors="lime", linewidths=1.2)
        if pred[z].any():
            ax.contour(pred[z], levels=[0.5], colors="red", linewidths=1.0)
        ax.set_title(f"{name}\nslice {z}", fontsize=9)
        ax.axis("off")
    fig.suptitle(title + ("  " if title else "") + "(green: reference, red: prediction)", fontsize=10)
    fig.tight_layout()
    return save_figure(path, fig, dpi=110)
