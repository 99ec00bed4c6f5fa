"""Checkpoint formats: one pure key function per public layout, in the ``FORMATS`` registry.

Layouts understood (after ``reading.unwrap`` and ``reading.strip_key_prefixes``):

- ``nvidia_swinvit``: NVIDIA ``model_swinvit.pt``, keys ``layers{1..4}.0.blocks.{j}...`` with ``mlp.fc1/fc2``.
- ``monai_swinunetr``: a MONAI ``SwinUNETR`` state dict, encoder under ``swinViT.`` with ``mlp.linear1/linear2``.
- ``smit``: SMIT with the encoder under ``transformer.`` (``SMIT_3D_Seg``, ``Trans_Unetr``, iBOT backbones) or bare
  (``pre_train_weight.pt``): ``layers.{i}.blocks.{j}...``, ``norm{0..3}`` (skip norms), optional ``mask_token``.
- ``nnunet_swin``: our own ``SwinSegmentationNetwork`` state dicts and nnU-Net checkpoints of it.

Each entry: the backbone family its weights fit, a detection marker, the key function. A key function maps a
checkpoint key to our encoder key, to ``Ignored(reason)``, or to None (a key that maps nowhere: reported as
unexpected). ``map_keys`` applies the rules every format shares (derived relative-position index buffers and the
masked-image-modelling token are never loaded), then the format's function. A new layout is one function and one entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch

from nnunet_swin.errors import UserError
from nnunet_swin.networks.attention import relative_position_index
from nnunet_swin.networks.weights.reading import strip_key_prefixes


@dataclass(frozen=True)
class Ignored:
    """What a format's key function returns for a checkpoint key that is deliberately not loaded."""
    reason: str


_DECODER = Ignored("decoder (not part of the encoder)")
_SSL_HEAD = Ignored("self-supervised pretraining head")
_DECODER_PREFIXES = ("encoder1.", "encoder2.", "encoder3.", "encoder4.", "encoder10.", "decoder1.", "decoder2.",
                     "decoder3.", "decoder4.", "decoder5.", "out.", "decoder.")


def _swin_unetr_key(key: str) -> str | None:
    """``layers{L}.0.blocks.j.mlp.fc1.weight`` (or ``linear1``) -> ``layers.{L-1}.blocks.j.mlp.fc1.weight``."""
    if key.startswith("patch_embed."):
        return key
    m = re.match(r"layers(\d+)\.0\.(.*)$", key)
    if not m:
        return None
    rest = m.group(2).replace("mlp.linear1.", "mlp.fc1.").replace("mlp.linear2.", "mlp.fc2.")
    return f"layers.{int(m.group(1)) - 1}.{rest}"


# Key functions: one per source format, pure. A (prefix-stripped) checkpoint key -> our encoder key, ``Ignored``
# (with the reason), or None (a key that maps nowhere: reported as unexpected).
def nvidia_swinvit_key(key: str) -> str | Ignored | None:
    target = _swin_unetr_key(key)
    if target is None and not key.startswith(("layers", "patch_embed")):
        return _SSL_HEAD
    return target


def monai_swinunetr_key(key: str) -> str | Ignored | None:
    if not key.startswith("swinViT."):
        return _DECODER if key.startswith(_DECODER_PREFIXES) else Ignored("not part of the Swin encoder")
    return _swin_unetr_key(key[len("swinViT."):])


def smit_key(key: str) -> str | Ignored | None:
    if key.startswith(_DECODER_PREFIXES):
        return _DECODER
    if key.startswith(("head.", "transformer.norm.", "rec")) or key in ("norm.weight", "norm.bias"):
        return _SSL_HEAD
    if key.startswith("transformer."):
        key = key[len("transformer."):]
    m = re.match(r"norm(\d+)\.(weight|bias)$", key)
    if m:
        return f"skip_norms.{m.group(1)}.{m.group(2)}"
    if key.startswith("patch_embed.") or re.match(r"layers\.\d+\.", key):
        return key
    return None


def nnunet_swin_key(key: str) -> str | Ignored | None:
    if key.startswith("decoder."):
        return _DECODER
    return key[len("encoder."):] if key.startswith("encoder.") else None


@dataclass(frozen=True)
class CheckpointFormat:
    """One source layout: the backbone family its weights fit (None: either, our own network), whether a
    (prefix-stripped) key is characteristic of it, and its key function."""
    family: str | None
    marks: Callable[[str], bool]
    map_key: Callable[[str], str | Ignored | None]


# Detection tries the formats in this order; a new format is one key function and one entry here.
FORMATS: dict[str, CheckpointFormat] = {
    "nnunet_swin": CheckpointFormat(None, lambda k: k.startswith(("encoder.layers.", "encoder.patch_embed.")),
                                    nnunet_swin_key),
    "monai_swinunetr": CheckpointFormat("swin_unetr", lambda k: k.startswith("swinViT."), monai_swinunetr_key),
    "nvidia_swinvit": CheckpointFormat("swin_unetr", re.compile(r"layers[1-9]\.0\.blocks\.").match,
                                       nvidia_swinvit_key),
    "smit": CheckpointFormat("smit", re.compile(r"(transformer\.)?layers\.\d+\.blocks\.").match, smit_key),
}


def detect_format(state: dict[str, torch.Tensor]) -> str:
    """One of ``FORMATS``' names, from the (prefix-stripped) key names; ``UserError`` when none fits."""
    keys = [strip_key_prefixes(k) for k in state]
    for name, fmt in FORMATS.items():
        if any(fmt.marks(k) for k in keys):
            return name
    sample = ", ".join(list(state)[:4])
    raise UserError(f"unknown checkpoint layout (first keys: {sample}); expected NVIDIA model_swinvit.pt, a MONAI "
                    "SwinUNETR state dict, a SMIT checkpoint or an nnunet_swin/nnU-Net checkpoint")


@dataclass
class KeyMapping:
    """A checkpoint's keys mapped onto encoder names (``map_keys``), before shapes are compared with a model."""
    source_format: str
    mapped: dict[str, torch.Tensor]   # encoder key -> tensor
    renamed: dict[str, str]           # checkpoint key -> encoder key
    ignored: dict[str, str]           # checkpoint key -> why it is not loaded
    unexpected: list[str]             # checkpoint keys that map nowhere


def map_keys(state: dict[str, torch.Tensor], fmt: str) -> KeyMapping:
    """Pure key mapping of a checkpoint of format ``fmt``: the rules every format shares (derived index buffers and
    the masked-image-modelling token are never loaded), then the format's key function."""
    map_key = FORMATS[fmt].map_key
    out = KeyMapping(fmt, {}, {}, {}, [])
    for raw, value in state.items():
        key = strip_key_prefixes(raw)
        if key.endswith("relative_position_index"):
            target = Ignored(_check_index(value))
        elif key == "mask_token" or key.endswith(".mask_token"):
            target = Ignored("masked-image-modelling token (pretraining only)")
        else:
            target = map_key(key)
        if isinstance(target, Ignored):
            out.ignored[raw] = target.reason
        elif target is None:
            out.unexpected.append(raw)
        else:
            out.mapped[target] = value
            out.renamed[raw] = target
    return out


def _check_index(index: torch.Tensor) -> str:
    n = index.shape[-1]
    side = round(n ** (1 / 3))
    if index.ndim == 2 and side ** 3 == n:
        expected = relative_position_index((side,) * 3, (side,) * 3)
        if index.shape == expected.shape and torch.equal(index.to(torch.int64).cpu(), expected):
            return "relative-position index (derived buffer; equals the standard index)"
    return "relative-position index (derived buffer; DIFFERS from the standard index, recomputed instead)"
