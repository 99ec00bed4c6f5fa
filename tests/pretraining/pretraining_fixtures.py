"""Small volumes and a tiny pretraining configuration for the pretraining tests."""
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_swin.pretraining.trainer import PretrainConfig

TINY = dict(backbone="smit_tiny", crop=32, batch_size=1, epochs=2, iterations_per_epoch=2, out_dim=32,
            head_hidden=16, head_bottleneck=8, num_workers=0, save_every=1, warmup_epochs=1, modality="CT")


def write_volume(path: Path, array_zyx: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0)) -> Path:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def ct_volume(rng, shape=(40, 40, 40)):
    """A blocky HU phantom: air, soft tissue (40) and bone (700) with noise."""
    vol = np.full(shape, -1000.0, np.float32)
    z, y, x = shape
    vol[z // 8:-z // 8, y // 8:-y // 8, x // 8:-x // 8] = 40.0
    vol[z // 3:z // 2, y // 3:y // 2, x // 3:x // 2] = 700.0
    return vol + rng.normal(0, 10, shape).astype(np.float32)


@pytest.fixture
def ct_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "ct"
    write_volume(folder / "a.nii.gz", ct_volume(rng, (40, 40, 40)))
    write_volume(folder / "b.nii.gz", ct_volume(rng, (24, 48, 40)))        # z shorter than the 32 crop: padded
    write_volume(folder / "c.nii.gz", ct_volume(rng, (20, 20, 20)), (2.0, 2.0, 2.0))
    return folder


def tiny_config(**kw) -> PretrainConfig:
    return PretrainConfig(**{**TINY, **kw})
