"""Checkpoint formats: one pure key function per public layout, in the ``FORMATS`` registry.

Layouts understood (after ``reading.unwrap`` and ``reading.strip_key_prefixes``):

- ``nvidia_swinvit``: NVIDIA ``model_swinvit.pt``, keys ``layers{1..4}.0.blocks.{j}...`` with ``mlp.fc1/fc2``.
- ``monai_swinunetr``: a MONAI ``SwinUNETR`` state dict, encoder under ``swinViT.`` with ``mlp.linear1/linear2``.
- ``smit``: SMIT with the encoder under ``transformer.`` (``SMIT_3D_Seg``, ``Trans_Unetr``, iBOT backbones) or bare
  (``pre_train_weight.pt``): ``layers.{i}.blocks.{j}...``, ``norm{0..3}`` (skip norms), optional ``mask_token``.
- ``nnunet_swin``: our own ``SwinSegmentationNetwork`` state dicts and nnU-Net checkpoints of it.
- ``monai_swinunetr_v2``: MONAI ``SwinUNETR(use_v2=True)`` (VoComni): ``swinViT.layers{i}c.*`` residual blocks too.
- ``voco_ssl_head``: VoCo's released SSL-head backbones: a bare V2 ``swinViT.*`` + ``encoder1..4/10.*``, no decoder.
- ``suprem``: SuPreM ``{"net": module.backbone.swinViT.* ...}`` plus its universal-model head keys.
- ``swin_ssl_head``: NVIDIA's ``SSLHead`` training layout (BrainSegFounder): ``module.swinViT.*`` plus
  ``rotation_head``, ``contrastive_head`` and the ``conv`` reconstruction decoder.
MONAI state dicts before and after 1.5 have the same keys and shapes (the PatchMerging order changed, PR #8285): the
order is the network's ``merge_order`` switch, never guessed from keys (``loading`` reports which and why).

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


_FINAL_NORM = Ignored("final LayerNorm of MONAI's first SwinTransformer (removed in MONAI 0.9; MONAI's load_from "
                      "never reads it either)")
_SUPREM_HEAD = Ignored("SuPreM universal-model head (organ embedding, controller, text-to-vision)")
_SUPREM_HEADS = ("organ_embedding", "controller.", "precls_conv.", "GAP.", "text_to_vision.")
_SSL_HEADS = ("rotation_head.", "contrastive_head.", "conv.")


def _swin_unetr_key(key: str) -> str | None:
    """``layers{L}.0.blocks.j.mlp.fc1.weight`` (or ``linear1``) -> ``layers.{L-1}.blocks.j.mlp.fc1.weight``;
    Swin UNETR-V2's ``layers{L}c.0.layer.conv1.conv.weight`` -> ``layers.{L-1}.residual.layer.conv1.conv.weight``."""
    if key.startswith("patch_embed."):
        return key
    m = re.match(r"layers(\d+)c\.0\.(.*)$", key)
    if m:
        return f"layers.{int(m.group(1)) - 1}.residual.{m.group(2)}"
    m = re.match(r"layers(\d+)\.0\.(.*)$", key)
    if not m:
        return None
    rest = m.group(2).replace("mlp.linear1.", "mlp.fc1.").replace("mlp.linear2.", "mlp.fc2.")
    return f"layers.{int(m.group(1)) - 1}.{rest}"


# Key functions: one per source format, pure. A (prefix-stripped) checkpoint key -> our encoder key, ``Ignored``
# (with the reason), or None (a key that maps nowhere: reported as unexpected).
def nvidia_swinvit_key(key: str) -> str | Ignored | None:
    if key in ("norm.weight", "norm.bias"):
        return _FINAL_NORM
    target = _swin_unetr_key(key)
    if target is None and not key.startswith(("layers", "patch_embed")):
        return _SSL_HEAD
    return target


def monai_swinunetr_key(key: str) -> str | Ignored | None:
    """MONAI ``SwinUNETR`` (v1 and V2 alike), the VoCo SSL-head backbones and VoComni: ``swinViT.*`` is the encoder,
    ``encoder1..10`` / ``decoder*`` / ``out`` are the convolutional side (not loaded)."""
    if not key.startswith("swinViT."):
        return _DECODER if key.startswith(_DECODER_PREFIXES) else Ignored("not part of the Swin encoder")
    return _swin_unetr_key(key[len("swinViT."):])


def suprem_key(key: str) -> str | Ignored | None:
    """SuPreM ``{"net": module.backbone.<SwinUNETR key> + module.<head>}`` (prefixes already stripped)."""
    return _SUPREM_HEAD if key.startswith(_SUPREM_HEADS) else monai_swinunetr_key(key)


def swin_ssl_head_key(key: str) -> str | Ignored | None:
    """NVIDIA's ``SSLHead`` training layout, as BrainSegFounder saves it: ``swinViT.*`` plus ``rotation_head``,
    ``contrastive_head`` and the reconstruction ``conv`` decoder."""
    return _SSL_HEAD if key.startswith(_SSL_HEADS) else monai_swinunetr_key(key)


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
    """One source layout: the backbone family its weights fit (None: either, our own network), whether a checkpoint's
    (prefix-stripped) keys are characteristic of it, its key function, and where such files come from."""
    family: str | None
    marks: Callable[[list[str]], bool]
    map_key: Callable[[str], str | Ignored | None]
    source: str


def _any(pattern: str) -> Callable[[list[str]], bool]:
    match = re.compile(pattern).match
    return lambda keys: any(match(k) for k in keys)


def _v2_without_decoder(keys: list[str]) -> bool:
    return any(k.startswith("swinViT.layers1c.") for k in keys) and not any(
        k.startswith(("decoder1.", "decoder5.", "out.")) for k in keys)


# Detection tries the formats in this order; a new format is one key function and one entry here.
FORMATS: dict[str, CheckpointFormat] = {
    "nnunet_swin": CheckpointFormat(None, _any(r"encoder\.(layers|patch_embed)\."), nnunet_swin_key,
                                    "nnunet_swin / nnU-Net checkpoint of our network, or `nnunet-swin pretrain`"),
    "suprem": CheckpointFormat("swin_unetr", lambda keys: any(k.startswith(_SUPREM_HEADS) for k in keys)
                               and any(k.startswith("swinViT.") for k in keys), suprem_key,
                               "SuPreM Swin UNETR (supervised_suprem_swinunetr_2100.pth, MrGiovanni/SuPreM)"),
    "swin_ssl_head": CheckpointFormat("swin_unetr", lambda keys: any(k.startswith(_SSL_HEADS[:2]) for k in keys)
                                      and any(k.startswith("swinViT.") for k in keys), swin_ssl_head_key,
                                      "Swin UNETR SSLHead training checkpoint (BrainSegFounder "
                                      "model_weights_*-pretrain.pt; NVIDIA SSL pretraining runs)"),
    "voco_ssl_head": CheckpointFormat("swin_unetr", _v2_without_decoder, monai_swinunetr_key,
                                      "VoCo SSL-head backbone, Swin UNETR-V2 (VoCo_{B,L,H}_SSL_head.pt, Luffy503/VoCo)"),
    "monai_swinunetr_v2": CheckpointFormat("swin_unetr", _any(r"swinViT\.layers\d+c\."), monai_swinunetr_key,
                                           "MONAI SwinUNETR(use_v2=True) state dict (VoComni_{B,L,H}.pt)"),
    "monai_swinunetr": CheckpointFormat("swin_unetr", _any(r"swinViT\."), monai_swinunetr_key,
                                        "MONAI SwinUNETR state dict (any MONAI version; NVIDIA BTCV fine-tuned "
                                        "swin_unetr.base_5000ep_f48_lr2e-4_pretrained.pt)"),
    "nvidia_swinvit": CheckpointFormat("swin_unetr", _any(r"layers[1-9]\.0\.blocks\."), nvidia_swinvit_key,
                                       "NVIDIA Swin UNETR self-supervised encoder (model_swinvit.pt)"),
    "smit": CheckpointFormat("smit", _any(r"(transformer\.)?layers\.\d+\.blocks\."), smit_key,
                             "SMIT (SMIT_3D_Seg / Trans_Unetr fine-tuned, iBOT backbone, pre_train_weight.pt)"),
}


def detect_format(state: dict[str, torch.Tensor]) -> str:
    """One of ``FORMATS``' names, from the (prefix-stripped) key names; ``UserError`` when none fits."""
    keys = [strip_key_prefixes(k) for k in state]
    for name, fmt in FORMATS.items():
        if fmt.marks(keys):
            return name
    sample = ", ".join(list(state)[:4])
    raise UserError(f"unknown checkpoint layout (first keys: {sample}); expected NVIDIA model_swinvit.pt, a MONAI "
                    "SwinUNETR state dict (v1 or V2), VoCo, SuPreM, BrainSegFounder, a SMIT checkpoint or an "
                    "nnunet_swin/nnU-Net checkpoint")


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
