"""Where the pretrained encoder checkpoint is: one resolver for every caller.

The value is an explicit argument when the caller has one (a command-line option, a study's environment), else the
environment variable ``nnUNet_swin_pretrained``. It names either a checkpoint file, or a folder with one file per
backbone named ``<backbone>.pt`` or ``<backbone>.pth`` (backbone = the plans' ``arch_kwargs["backbone"]``, e.g.
``smit.pth``, ``swin_unetr.pt``), so one folder serves both SMIT and Swin UNETR plans. ``nnunet-swin env`` shows it.
Nothing here writes ``os.environ``: callers pass values.
"""
from __future__ import annotations

import os
from pathlib import Path

from nnunet_swin.errors import UserError

PRETRAINED_ENV = "nnUNet_swin_pretrained"
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def pretrained_setting(value: str | os.PathLike | None = None) -> str:
    """The location to use: ``value`` when given (non-empty), else ``$nnUNet_swin_pretrained``, else ``""``."""
    if value is not None and str(value).strip():
        return str(value).strip()
    return os.environ.get(PRETRAINED_ENV, "").strip()


def checkpoint_files_in(folder: Path) -> list[Path]:
    """The ``.pt`` / ``.pth`` files of ``folder``, sorted by name."""
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix in CHECKPOINT_SUFFIXES)


def resolve_pretrained_checkpoint(backbone: str, value: str | os.PathLike | None = None) -> Path:
    """The checkpoint file for ``backbone``: ``value`` (a file, or a folder holding ``<backbone>.pt/.pth``) when
    given, else the one ``$nnUNet_swin_pretrained`` names. ``UserError`` with the fix when there is none."""
    given = value is not None and str(value).strip() != ""
    setting = pretrained_setting(value)
    source = "the given location" if given else PRETRAINED_ENV
    names = " or ".join(f"{backbone}{s}" for s in CHECKPOINT_SUFFIXES)
    if not setting:
        raise UserError(
            f"no CT-pretrained checkpoint for backbone {backbone!r}: the environment variable {PRETRAINED_ENV} is not "
            f"set. Set it to the checkpoint file, or to a folder holding {names} "
            f"(e.g. `export {PRETRAINED_ENV}=/path/to/weights`); to train from random initialisation use "
            f"SwinScratchTrainer instead")
    label = setting if given else f"{PRETRAINED_ENV}={setting}"
    path = Path(setting).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for suffix in CHECKPOINT_SUFFIXES:
            candidate = path / f"{backbone}{suffix}"
            if candidate.is_file():
                return candidate
        present = [p.name for p in checkpoint_files_in(path)]
        raise UserError(
            f"{label} is a folder without {names}; it holds "
            f"{', '.join(present) if present else 'no .pt/.pth file'}. Put the {backbone} checkpoint there under that "
            f"name, or point {source} at the checkpoint file itself")
    raise UserError(f"{label} does not exist; set it to the {backbone} checkpoint file or to a folder "
                    f"holding {names}")


def checkpoints_to_inspect(path: str | os.PathLike, backbone: str | None = None) -> list[Path]:
    """What ``weights inspect PATH`` describes: a file as given; a folder with ``backbone`` as the trainers resolve it
    (``<backbone>.pt`` / ``.pth`` in it, the one resolver), else every such file it holds."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{path} does not exist; give a checkpoint file (.pt / .pth) or a folder holding "
                        f"<backbone>.pt / .pth files")
    if p.is_file() or backbone is not None:
        return [resolve_pretrained_checkpoint(backbone or p.stem, p)]
    if not p.is_dir():
        raise UserError(f"{path} is neither a file nor a folder")
    present = checkpoint_files_in(p)
    if not present:
        raise UserError(f"folder {path} holds no .pt/.pth file; the trainers look for <backbone>.pt or .pth there "
                        f"(e.g. smit.pth, swin_unetr.pt)")
    return present
