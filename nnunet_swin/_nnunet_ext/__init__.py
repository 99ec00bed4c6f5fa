"""The folder `nnUNet_extTrainer` points at. It holds one uniquely named shim module, nothing else.

nnU-Net imports every module in this folder as a top-level module while it looks a trainer up by name; the shim
re-exports our trainers from their real package, so the class it finds is the importable, picklable original.
"""
from pathlib import Path


def ext_trainer_dir() -> Path:
    """This folder: the value to put on ``nnUNet_extTrainer`` (imports nothing; the shim module is not loaded)."""
    return Path(__file__).resolve().parent
