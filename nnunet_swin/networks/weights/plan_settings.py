"""What a pretrained checkpoint asks of the fine-tuning plans (``plan_and_preprocess -like_pretrained``).

The values are read from one of two places, never guessed from a file name alone:

- our pretraining checkpoints: their metadata (``metadata.read_pretraining_metadata``): backbone preset, spacing
  (z, y, x) mm, intensity scheme, crop;
- public checkpoints: the registry entry (``registry.REGISTRY``), by its name (``voco_b``) or by a file that is the
  entry's (its published file name, or its published md5).

``PlanSettings.normalization`` is one of the planner's modes: every checkpoint we know saw input scaled to [0, 1],
and the stock scheme closest to that is ``rescale01`` (nnU-Net's ``RescaleTo01Normalization``, per image min-max);
a CT HU window or a percentile clip has no stock equivalent, which ``intensity`` states.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.weights import metadata as M
from nnunet_swin.networks.weights.registry import REGISTRY, PublicCheckpoint

NORMALIZATION_OF_RANGE = {(0.0, 1.0): "rescale01"}


@dataclass(frozen=True)
class PlanSettings:
    """The planning values a checkpoint carries; ``None`` where its source does not say (the planner keeps its own).

    ``name`` is what the plans record: a registry name or the checkpoint's bare file name, never a path."""

    name: str
    source: str                                   # "registry entry voco_b", "nnunet-swin pretraining metadata"
    backbone: str
    spacing_zyx_mm: tuple[float, float, float] | None
    spacing_note: str                             # why there is no spacing, when there is none
    normalization: str | None
    intensity: str                                # what the encoder saw, in words
    cubic_size: int | None
    modality: str | None                          # "CT" / "MR"

    def record(self) -> dict:
        """Plain JSON for the plans' ``swin.like_pretrained`` block."""
        return {"checkpoint": self.name, "source": self.source, "backbone": self.backbone,
                "spacing_zyx_mm": list(self.spacing_zyx_mm) if self.spacing_zyx_mm else None,
                "normalization": self.normalization, "intensity": self.intensity, "cubic_size": self.cubic_size,
                "modality": self.modality}


def from_metadata(metadata: dict, name: str) -> PlanSettings:
    """Settings from the metadata of an ``nnunet-swin pretrain`` checkpoint (``name``: its bare file name)."""
    backbone = str(metadata.get("backbone"))
    get_preset(backbone)  # an unknown preset is refused here, naming the known ones
    intensity = dict(metadata.get("intensity") or {})
    out = intensity.get("output_range")
    spacing = metadata.get("spacing_zyx_mm")
    crop = metadata.get("crop")
    return PlanSettings(
        name=name, source="its nnunet-swin pretraining metadata", backbone=backbone,
        spacing_zyx_mm=tuple(float(s) for s in spacing) if spacing else None,
        spacing_note="" if spacing else "the metadata names no spacing",
        normalization=NORMALIZATION_OF_RANGE.get(tuple(float(v) for v in out) if out else None),
        intensity=M.describe_intensity(intensity), cubic_size=int(crop) if crop else None,
        modality=intensity.get("modality"))


def from_registry(entry: PublicCheckpoint) -> PlanSettings:
    """Settings from a registry entry."""
    return PlanSettings(
        name=entry.name, source=f"the registry entry {entry.name}", backbone=entry.preset,
        spacing_zyx_mm=entry.spacing_mm, spacing_note="" if entry.spacing_mm else f"its spacing is {entry.spacing}",
        normalization=NORMALIZATION_OF_RANGE.get(tuple(float(v) for v in entry.input_range)),
        intensity=entry.intensity,
        cubic_size=entry.roi or int(get_preset(entry.preset)["pretrained_input_size"][0]), modality=entry.modality)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def registry_entry_of_file(path: Path) -> PublicCheckpoint | None:
    """The registry entry whose published file name or md5 the file has, else None."""
    for entry in REGISTRY.values():
        if path.name == entry.file:
            return entry
    checksums = {e.md5: e for e in REGISTRY.values() if e.md5}
    return checksums.get(_md5(path)) if checksums else None


def plan_settings(value: str | os.PathLike) -> PlanSettings:
    """Resolve ``-like_pretrained VALUE``: an existing file (our metadata, else a registry file by name or md5), else
    a registry name. ``UserError`` in one line with what to do otherwise."""
    text = str(value).strip()
    path = Path(text).expanduser()
    if path.is_file():
        from nnunet_swin.networks.weights.reading import read_checkpoint

        metadata = M.read_pretraining_metadata(read_checkpoint(path))
        if metadata is not None:
            return from_metadata(metadata, path.name)
        entry = registry_entry_of_file(path)
        if entry is not None:
            return from_registry(entry)
        raise UserError(f"-like_pretrained {text}: the file carries no nnunet-swin pretraining metadata and is no "
                        f"registry checkpoint (by file name or md5); give a registry name ({', '.join(REGISTRY)}; "
                        f"`nnunet-swin weights list`), or leave -like_pretrained out and set -backbone, "
                        f"-overwrite_target_spacing, -normalization and -cubic_size yourself")
    if text in REGISTRY:
        return from_registry(REGISTRY[text])
    if path.is_dir():
        raise UserError(f"-like_pretrained {text} is a folder; give the checkpoint file in it or a registry name "
                        f"({', '.join(REGISTRY)})")
    raise UserError(f"-like_pretrained {text}: no such file and no registry name; give a checkpoint file or one of "
                    f"{', '.join(REGISTRY)} (`nnunet-swin weights list`)")


__all__ = ["PlanSettings", "from_metadata", "from_registry", "plan_settings", "registry_entry_of_file"]
