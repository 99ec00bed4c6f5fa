"""Shared test helpers: nnU-Net folders in a temporary directory, the real sample volume, small datasets."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHARED_REAL = HERE.parent.parent / "shared" / "data" / "real"


def real_data_dir() -> Path:
    """The bundled copy of the real sample volumes (falls back to the shared checkout folder)."""
    bundled = HERE / "data" / "real"
    if (bundled / "pyrad_brain1_0000.nii.gz").is_file():
        return bundled
    return SHARED_REAL


@pytest.fixture
def nnunet_dirs(tmp_path, monkeypatch):
    """nnUNet_raw / nnUNet_preprocessed / nnUNet_results under tmp_path, set in this process's environment."""
    dirs = {name: tmp_path / name for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for name, path in dirs.items():
        path.mkdir()
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    return dirs


def _run_cli(*args: str, env: dict | None = None, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a console script (ours or nnU-Net's) from the active environment's bin folder."""
    exe = Path(sys.executable).parent / args[0]
    cmd = [str(exe) if exe.exists() else shutil.which(args[0]) or args[0], *args[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _write_real_dataset(raw: Path, dataset_id: int = 502, copies: int = 3) -> Path:
    """An nnU-Net raw dataset from the real thick-slice brain MRI: the volume and two flipped copies for training,
    the original in imagesTs."""
    import numpy as np
    import SimpleITK as sitk

    src = real_data_dir()
    img = sitk.ReadImage(str(src / "pyrad_brain1_0000.nii.gz"))
    lab = sitk.ReadImage(str(src / "pyrad_brain1_label.nii.gz"))
    folder = raw / f"Dataset{dataset_id:03d}_RealBrain"
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (folder / sub).mkdir(parents=True)
    for i in range(copies):
        def flip(image, axis=i):
            arr = sitk.GetArrayFromImage(image)
            arr = np.flip(arr, axis=2 - (axis % 3)).copy() if axis else arr
            out = sitk.GetImageFromArray(arr)
            out.CopyInformation(image)
            return out
        sitk.WriteImage(flip(img), str(folder / "imagesTr" / f"brain_{i:03d}_0000.nii.gz"))
        sitk.WriteImage(flip(lab), str(folder / "labelsTr" / f"brain_{i:03d}.nii.gz"))
    sitk.WriteImage(img, str(folder / "imagesTs" / "brain_test_0000.nii.gz"))
    sitk.WriteImage(lab, str(folder / "labelsTs" / "brain_test.nii.gz"))
    import json
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T2"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": copies, "file_ending": ".nii.gz", "name": "RealBrain"}))
    return folder


@pytest.fixture
def run_cli():
    """``run_cli("nnunet-swin", "evaluate", ..., env=..., check=...)``: a console script of this environment in a
    subprocess (callers are marked ``slow`` when the command trains or plans)."""
    return _run_cli


@pytest.fixture
def write_real_dataset():
    """``write_real_dataset(raw, dataset_id, copies)``: a raw dataset from the real thick-slice brain MRI."""
    return _write_real_dataset
