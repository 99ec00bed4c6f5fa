"""Reading a checkpoint file safely and finding its tensors.

- ``read_checkpoint(path)``: ``torch.load`` on CPU with ``weights_only=True`` (numpy / argparse objects some trainers
  store are allowed, anything else refused); empty, truncated and non-checkpoint files get a one-line ``UserError``.
- ``unwrap(obj)``: the flat tensor dict inside the wrappers ``network_weights`` (nnU-Net), ``student`` (iBOT/DINO),
  ``state_dict``, ``model``, ``net`` (SuPreM), ``teacher``.
- ``strip_key_prefixes(key)``: the key without ``module.`` / ``_orig_mod.`` / ``backbone.`` in front.
"""
from __future__ import annotations

import argparse
import os

import torch

from nnunet_swin.errors import UserError

_TRUSTED_PICKLE = ("argparse.Namespace",)


def _not_a_checkpoint(path: str) -> str | None:
    """Why the file cannot be a ``torch.save`` checkpoint (empty, truncated archive, not a pickle), else None."""
    import zipfile

    size = os.path.getsize(path)
    if size == 0:
        return f"checkpoint {path!r} is empty (0 bytes); the download or copy failed, fetch the file again"
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return (f"checkpoint {path!r} is an incomplete torch.save archive ({size} bytes, its end is missing); "
                    "the download or copy was cut short, fetch the file again")
        return None
    if head[:1] == b"\x80":  # a pickle: torch's legacy format starts with its magic number, a plain pickle does not
        import pickle

        class _NoGlobals(pickle.Unpickler):
            def find_class(self, module, name):
                raise pickle.UnpicklingError(f"{module}.{name}")

        try:
            with open(path, "rb") as f:
                first = _NoGlobals(f).load()
        except Exception:  # noqa: BLE001 - anything but the magic number
            first = None
        if isinstance(first, int) and first == torch.serialization.MAGIC_NUMBER:
            return None
        return (f"{path!r} is a Python pickle but not a PyTorch checkpoint (torch.save); give the .pt/.pth file of "
                "the pretrained weights")
    return (f"{path!r} is not a PyTorch checkpoint (neither a torch.save archive nor a pickle); give the .pt/.pth "
            "file of the pretrained weights")


def read_checkpoint(path: str | os.PathLike) -> object:
    """``torch.load`` on CPU with ``weights_only=True``; plain numpy / argparse objects some trainers store are
    allowed, anything else is refused. Unreadable files raise ``UserError``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"checkpoint {path!r} is a folder; give the checkpoint file in it (a folder of "
                        "<backbone>.pt / .pth files is what nnUNet_swin_pretrained may name)")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path!r} does not exist")
    problem = _not_a_checkpoint(path)
    if problem:
        raise UserError(problem)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # noqa: BLE001 - reported below
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001
            names = None
        if names is None:
            raise UserError(f"cannot read checkpoint {path!r} ({type(first).__name__}); the file is corrupt, "
                            "fetch it again") from None
        refused = [n for n in names if not (n.startswith("numpy.") or n in _TRUSTED_PICKLE)]
        if refused:
            raise UserError(f"checkpoint {path!r} holds arbitrary Python objects ({', '.join(refused[:3])}), which "
                            "are not loaded for safety; if you trust the file, re-save only its tensors: load it "
                            "once with torch.load(path, weights_only=False), save its state dict as a new .pth "
                            "file and give that file") from None
        import pydoc
        allowed = [pydoc.locate(n) for n in names]
        try:
            with torch.serialization.safe_globals([a for a in allowed if a is not None] + [argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as second:  # noqa: BLE001
            raise UserError(f"cannot read checkpoint {path!r} ({type(second).__name__}); the file is truncated or "
                            "corrupt, fetch it again") from None


# ------------------------------------------------------------------------------------------------ unwrapping
def unwrap(obj: object) -> tuple[str, dict[str, torch.Tensor]]:
    """(wrapper path, flat tensor dict) of a loaded checkpoint. Raises ``UserError`` if no state dict is found."""
    path = []
    for _ in range(4):
        if not isinstance(obj, dict):
            break
        for key in ("network_weights", "student", "state_dict", "model", "net", "teacher"):
            if key in obj and isinstance(obj[key], dict):
                path.append(key)
                obj = obj[key]
                break
        else:
            break
    if not isinstance(obj, dict):
        raise UserError(f"unknown checkpoint layout: expected a dict of tensors, got {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError("unknown checkpoint layout: no tensors found (looked inside network_weights, student, "
                        f"state_dict, model, net; top-level keys: {', '.join(map(str, list(obj)[:8]))})")
    return "/".join(path) or "bare", tensors


WRAPPER_PREFIXES = ("module.", "_orig_mod.", "backbone.")


def strip_key_prefixes(key: str) -> str:
    """``key`` without the wrapper prefixes in front of it: ``module.`` (DataParallel / DDP), ``_orig_mod.``
    (``torch.compile``), ``backbone.`` (iBOT / DINO), in any order and repetition."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


