"""Where an nnU-Net dataset lives and what its ``dataset.json`` declares.

``$nnUNet_raw/DatasetNNN_Name/{imagesTr,labelsTr,imagesTs,dataset.json}`` (and the same ``DatasetNNN_Name`` folder
under ``nnUNet_preprocessed`` and ``nnUNet_results``), as nnU-Net v2 documents it.
"""
from __future__ import annotations

import os
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json


def find_raw_dataset(dataset_id: int, nnunet_raw: str | os.PathLike | None = None) -> Path:
    """``<nnUNet_raw>/DatasetNNN_*`` for an id (``nnunet_raw`` given, else the environment variable), or a UserError
    saying what is missing."""
    raw = nnunet_raw if nnunet_raw is not None else os.environ.get("nnUNet_raw")
    if not raw:
        raise UserError("nnUNet_raw is not set; export nnUNet_raw=/path/to/nnUNet_raw "
                        "(and nnUNet_preprocessed, nnUNet_results) as for stock nnU-Net")
    return find_dataset_folder(raw, dataset_id, "nnUNet_raw")


def find_dataset_folder(base: str | os.PathLike, dataset_id: int, name: str = "nnUNet_raw") -> Path:
    """The one ``DatasetNNN_*`` folder of an id under ``base`` (``name`` says which nnU-Net folder it is), or a
    UserError when there is none or more than one."""
    matches = [m for m in sorted(Path(base).glob(f"Dataset{int(dataset_id):03d}_*")) if m.is_dir()]
    if not matches:
        raise UserError(f"unknown dataset id {dataset_id}: no folder Dataset{int(dataset_id):03d}_* in "
                        f"{name}={base}; check -d or create the dataset (e.g. `nnunet-swin make_demo_dataset`)")
    if len(matches) > 1:
        raise UserError(f"dataset id {dataset_id} is ambiguous in {base}: {', '.join(m.name for m in matches)}; "
                        f"keep one folder per id")
    return matches[0]


def num_channels(dataset: dict) -> int:
    """Input channels ``dataset.json`` declares (``channel_names``, or the older ``modality``)."""
    return len(dataset.get("channel_names", dataset.get("modality")))


def dataset_modality(dataset: dict) -> str | None:
    """``"CT"`` when every channel is named ``CT`` (the name that switches nnU-Net to CT normalisation), ``"MR"`` when
    none is, None for a mix; read from ``channel_names`` (or the older ``modality``)."""
    names = {str(v).strip().upper() for v in (dataset.get("channel_names") or dataset.get("modality") or {}).values()}
    if not names:
        return None
    return "CT" if names == {"CT"} else ("MR" if "CT" not in names else None)


def read_dataset_json(dataset_folder: str | os.PathLike) -> dict:
    """Parse and check a raw dataset's ``dataset.json`` (channel_names, labels with background 0 and a foreground,
    numTraining, file_ending); a UserError names the first field that is wrong and how to write it."""
    path = Path(dataset_folder) / "dataset.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist; every nnU-Net raw dataset needs a dataset.json")
    data = read_json(path, "dataset.json")
    if not isinstance(data, dict):
        raise UserError(f"invalid dataset.json at {path}: expected a JSON object")
    channels = data.get("channel_names", data.get("modality"))
    if not isinstance(channels, dict) or not channels:
        raise UserError(f"invalid dataset.json at {path}: 'channel_names' must map channel indices to names, "
                        f'e.g. {{"0": "T2"}}')
    labels = data.get("labels")
    if not isinstance(labels, dict) or labels.get("background") != 0:
        raise UserError(f"invalid dataset.json at {path}: 'labels' must contain \"background\": 0 and the "
                        f'foreground labels, e.g. {{"background": 0, "tumour": 1}}')
    if len(labels) < 2:
        raise UserError(f"invalid dataset.json at {path}: 'labels' has no foreground label; add one, "
                        f'e.g. "tumour": 1')
    if not isinstance(data.get("numTraining"), int) or data["numTraining"] < 1:
        raise UserError(f"invalid dataset.json at {path}: 'numTraining' must be a positive integer")
    if not isinstance(data.get("file_ending"), str) or not data["file_ending"].startswith("."):
        raise UserError(f"invalid dataset.json at {path}: 'file_ending' must be a string such as \".nii.gz\"")
    return data
