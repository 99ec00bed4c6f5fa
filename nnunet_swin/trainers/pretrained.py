"""Where the CT-pretrained encoder checkpoint is found: the ``nnUNet_swin_pretrained`` environment variable.

Stated once, nnU-Net style. The variable holds either a checkpoint file, or a folder with one file per backbone
named ``<backbone>.pt`` or ``<backbone>.pth`` (backbone = the plans' ``arch_kwargs["backbone"]``, e.g. ``smit.pth``,
``swin_unetr.pt``), so one folder serves both SMIT and Swin UNETR plans. ``nnunet-swin env`` shows it.
"""
from __future__ import annotations

import os
from pathlib import Path

from nnunet_swin.errors import UserError

PRETRAINED_ENV = "nnUNet_swin_pretrained"
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def resolve_pretrained_checkpoint(backbone: str) -> Path:
    """The checkpoint file for ``backbone`` named by ``$nnUNet_swin_pretrained``; ``UserError`` when there is none."""
    value = os.environ.get(PRETRAINED_ENV, "").strip()
    names = " or ".join(f"{backbone}{s}" for s in CHECKPOINT_SUFFIXES)
    if not value:
        raise UserError(
            f"no CT-pretrained checkpoint for backbone {backbone!r}: the environment variable {PRETRAINED_ENV} is not "
            f"set. Set it to the checkpoint file, or to a folder holding {names} "
            f"(e.g. `export {PRETRAINED_ENV}=/path/to/weights`); to train from random initialisation use "
            f"SwinScratchTrainer instead")
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for suffix in CHECKPOINT_SUFFIXES:
            candidate = path / f"{backbone}{suffix}"
            if candidate.is_file():
                return candidate
        present = sorted(p.name for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
        raise UserError(
            f"{PRETRAINED_ENV}={value} is a folder without {names}; it holds "
            f"{', '.join(present) if present else 'no .pt/.pth file'}. Put the {backbone} checkpoint there under that "
            f"name, or point {PRETRAINED_ENV} at the checkpoint file itself")
    raise UserError(f"{PRETRAINED_ENV}={value} does not exist; set it to the {backbone} checkpoint file or to a folder "
                    f"holding {names}")
