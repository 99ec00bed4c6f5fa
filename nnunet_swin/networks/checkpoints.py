"""Pretrained checkpoints onto ``SwinEncoder``: format detection, pure key mapping, a report, then a normal load.

Layouts understood (outer wrappers ``{'state_dict': ...}``, ``{'model': ...}``, ``{'student': ...}`` (iBOT/DINO),
``{'network_weights': ...}`` (nnU-Net) and ``module.`` / ``_orig_mod.`` / ``backbone.`` key prefixes are removed first):

- ``nvidia_swinvit``: NVIDIA ``model_swinvit.pt``, keys ``layers{1..4}.0.blocks.{j}...`` with ``mlp.fc1/fc2``.
- ``monai_swinunetr``: a MONAI ``SwinUNETR`` state dict, encoder under ``swinViT.`` with ``mlp.linear1/linear2``.
- ``smit``: SMIT with the encoder under ``transformer.`` (``SMIT_3D_Seg``, ``Trans_Unetr``, iBOT backbones) or bare
  (``pre_train_weight.pt``): ``layers.{i}.blocks.{j}...``, ``norm{0..3}`` (skip norms), optional ``mask_token``.
- ``nnunet_swin``: our own ``SwinSegmentationNetwork`` state dicts and nnU-Net checkpoints of it.

Each layout is one pure key function in the ``FORMATS`` registry (detection marker, backbone family, key function);
a new layout is one function and one entry. Loading and ``inspect_checkpoint`` run the same two steps:
``map_keys`` (names) then ``adapt_state`` (shapes, the report).

Rules. Relative-position index buffers are derived, never loaded (each is checked against the standard index and
reported as ignored). Decoder weights, SSL heads and ``mask_token`` are ignored with a reason. A checkpoint of the
other backbone family is refused. Different input channels: the patch-embedding kernel ``(E, c_ckpt, p, p, p)`` is
tiled over the new channel count and scaled by ``c_ckpt / c_new`` (timm's rule), so identical channels reproduce the
pretrained embedding. Relative-position tables for another window are interpolated trilinearly over the relative
offset grid (``(2w - 1)`` per axis) and reported as adapted. Loading refuses (``UserError``) when any encoder
parameter stays uncovered, a shape cannot be adapted, or a checkpoint key maps nowhere, unless ``allow_partial``.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from math import ceil
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_swin.errors import UserError
from nnunet_swin.networks.attention import relative_position_index
from nnunet_swin.networks.encoder import SwinEncoder

FAMILY_NAMES = {"swin_unetr": "Swin UNETR", "smit": "SMIT"}


@dataclass
class LoadReport:
    """How a checkpoint's keys landed on the encoder. Encoder keys are ours (``layers.{i}.blocks.{j}...``)."""
    source_format: str
    matched: list[str] = field(default_factory=list)            # encoder keys loaded unchanged
    adapted: dict[str, str] = field(default_factory=dict)       # encoder key -> what was done to the tensor
    missing: list[str] = field(default_factory=list)            # encoder keys the checkpoint does not cover
    unexpected: list[str] = field(default_factory=list)         # checkpoint keys that map to no encoder key
    shape_mismatched: dict[str, tuple] = field(default_factory=dict)  # encoder key -> (checkpoint, model) shape
    ignored: dict[str, str] = field(default_factory=dict)       # checkpoint key -> why it is not loaded
    renamed: dict[str, str] = field(default_factory=dict)       # checkpoint key -> encoder key
    new: list[str] = field(default_factory=list)                # variant-module keys the checkpoint cannot hold

    @property
    def complete(self) -> bool:
        """Every encoder parameter covered, nothing left over or unadaptable."""
        return not (self.missing or self.unexpected or self.shape_mismatched)

    def summary(self) -> str:
        n_ign = len(self.ignored)
        lines = [f"format {self.source_format}: {len(self.matched)} matched, {len(self.adapted)} adapted, "
                 f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                 f"{len(self.shape_mismatched)} shape-mismatched, {n_ign} ignored"
                 + (f", {len(self.new)} new" if self.new else "")]
        if self.new:
            lines.append(f"  new       {len(self.new)} key(s) of the variant's own modules (multi-scale fusion, "
                         "adaptive attention), kept at their identity initialisation")
        for key, what in self.adapted.items():
            lines.append(f"  adapted   {key}: {what}")
        for key in self.missing:
            lines.append(f"  missing   {key}")
        for key in self.unexpected:
            lines.append(f"  unexpected {key}")
        for key, (a, b) in self.shape_mismatched.items():
            lines.append(f"  shape     {key}: checkpoint {tuple(a)} vs model {tuple(b)}")
        reasons: dict[str, int] = {}
        for reason in self.ignored.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            lines.append(f"  ignored   {count} key(s): {reason}")
        return "\n".join(lines)

    __str__ = summary


# ----------------------------------------------------------------------------------------------------- reading
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


# ------------------------------------------------------------------------------------------ layout detection
def unwrap(obj: object) -> tuple[str, dict[str, torch.Tensor]]:
    """(wrapper path, flat tensor dict) of a loaded checkpoint. Raises ``UserError`` if no state dict is found."""
    path = []
    for _ in range(4):
        if not isinstance(obj, dict):
            break
        for key in ("network_weights", "student", "state_dict", "model", "teacher"):
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
                        f"state_dict, model; top-level keys: {', '.join(map(str, list(obj)[:8]))})")
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


# ---------------------------------------------------------------------------------------------- key mapping
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


# ----------------------------------------------------------------------------------------------- adaptation
def _table_window(rows: int) -> int | None:
    side = round(rows ** (1 / 3))
    return (side + 1) // 2 if side ** 3 == rows and side % 2 == 1 else None


def adapt_state(mapping: KeyMapping, target: dict[str, torch.Tensor],
                compute: bool = True) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Match mapped tensors to the encoder's ``target`` state (shapes only are used when ``compute`` is False):
    the tensors to load and the full report (the mapping's ignored and unexpected keys included)."""
    mapped = mapping.mapped
    report = LoadReport(mapping.source_format, ignored=dict(mapping.ignored), renamed=dict(mapping.renamed),
                        unexpected=list(mapping.unexpected))
    out: dict[str, torch.Tensor] = {}
    for key, ref in target.items():
        if key not in mapped:
            (report.new if is_variant_key(key) else report.missing).append(key)
            continue
        value = mapped[key]
        if tuple(value.shape) == tuple(ref.shape):
            report.matched.append(key)
            out[key] = value
            continue
        adapted = _adapt(key, value, tuple(ref.shape), compute)
        if adapted is None:
            report.shape_mismatched[key] = (tuple(value.shape), tuple(ref.shape))
        else:
            tensor, what = adapted
            report.adapted[key] = what
            if tensor is not None:
                out[key] = tensor
    for key in mapped:
        if key not in target:
            report.unexpected.append(key)
    return out, report


# Encoder modules only the spine variant has (``multiscale_fusion``, ``adaptive_attention``): no public or pretraining
# checkpoint holds them; they start as identity, so a plain checkpoint loads into the variant unchanged in effect.
VARIANT_MODULES = (".fusion.", ".key_score.")


def is_variant_key(key: str) -> bool:
    return any(m in f".{key}" for m in VARIANT_MODULES)


def _adapt(key: str, value: torch.Tensor, shape: tuple, compute: bool):
    if key == "patch_embed.proj.weight" and value.ndim == 5 and value.shape[0] == shape[0] \
            and tuple(value.shape[2:]) == shape[2:]:
        c_old, c_new = value.shape[1], shape[1]
        what = f"input channels {c_old} -> {c_new}: kernel tiled over channels and scaled by {c_old}/{c_new}"
        if not compute:
            return None, what
        reps = ceil(c_new / c_old)
        return value.repeat(1, reps, 1, 1, 1)[:, :c_new] * (c_old / c_new), what
    if key.endswith("relative_position_bias_table") and value.ndim == 2 and value.shape[1] == shape[1]:
        w_old, w_new = _table_window(value.shape[0]), _table_window(shape[0])
        if w_old is None or w_new is None:
            return None
        what = f"relative-position table interpolated from window {w_old} to {w_new} (trilinear over offsets)"
        if not compute:
            return None, what
        s_old, s_new = 2 * w_old - 1, 2 * w_new - 1
        grid = value.t().reshape(1, value.shape[1], s_old, s_old, s_old).to(torch.float32)
        grid = F.interpolate(grid, size=(s_new,) * 3, mode="trilinear", align_corners=True)
        return grid.reshape(value.shape[1], -1).t().to(value.dtype).contiguous(), what
    return None


# ----------------------------------------------------------------------------------------------- public API
def _encoder_of(obj: nn.Module) -> SwinEncoder:
    enc = getattr(obj, "encoder", obj)
    if not isinstance(enc, SwinEncoder):
        raise UserError(f"expected a SwinSegmentationNetwork or SwinEncoder, got {type(obj).__name__}")
    return enc


def encoder_family(encoder: SwinEncoder) -> str:
    return "smit" if encoder.skip_taps == "smit" else "swin_unetr"


def checkpoint_filter(state: dict[str, torch.Tensor], encoder: SwinEncoder) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """timm-style filter: any supported checkpoint dict -> (state dict for ``encoder.load_state_dict``, report)."""
    fmt = detect_format(state)
    family = FORMATS[fmt].family
    if family is not None and family != encoder_family(encoder):
        raise UserError(f"this is a {FAMILY_NAMES[family]} checkpoint ({fmt}) but the network is configured as "
                        f"{FAMILY_NAMES[encoder_family(encoder)]}; use the {FAMILY_NAMES[family]} plans/preset")
    return adapt_state(map_keys(state, fmt), encoder.state_dict())


def load_pretrained_encoder(network_or_encoder: nn.Module, path_or_state, *, allow_partial: bool = False) -> LoadReport:
    """Load a pretrained checkpoint (path or already-loaded object) into the network's encoder; returns the report.

    Raises ``UserError`` on an unreadable file, an unknown layout, the other backbone's checkpoint, or incomplete
    coverage of the encoder (unless ``allow_partial``; then whatever matched is loaded).
    """
    encoder = _encoder_of(network_or_encoder)
    obj = read_checkpoint(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    _, state = unwrap(obj)
    out, report = checkpoint_filter(state, encoder)
    if any(is_variant_key(k) for k in report.unexpected) and not allow_partial:
        raise UserError("this checkpoint holds the spine variant's modules (multi-scale fusion / adaptive attention) "
                        "but the network is the plain backbone; plan with the variant's preset (e.g. -backbone "
                        "swin_unetr_msf) or use a checkpoint of the plain network")
    if not report.complete and not allow_partial:
        raise UserError("checkpoint does not fully cover the encoder (" + report.summary().splitlines()[0]
                        + "); check the backbone preset (`nnunet-swin weights inspect PATH`) or allow partial loading")
    reference = encoder.state_dict()
    with torch.no_grad():
        for key, value in out.items():
            reference[key].copy_(value.to(reference[key].dtype))
    return report


@dataclass
class Inspection:
    """What ``nnunet-swin weights inspect`` prints."""
    path: str
    wrapper: str
    source_format: str
    family: str | None
    in_channels: int | None
    n_tensors: int
    fits: list[str]
    best_preset: str | None
    report: LoadReport | None

    def __str__(self) -> str:
        lines = [f"checkpoint: {self.path}", f"wrapper:    {self.wrapper}", f"format:     {self.source_format}"
                 f" ({FAMILY_NAMES.get(self.family, 'own network') if self.family else 'nnunet_swin network'})",
                 f"tensors:    {self.n_tensors}", f"in_channels: {self.in_channels}",
                 "fits presets: " + (", ".join(self.fits) if self.fits else "none completely")]
        if self.best_preset is not None:
            lines.append(f"mapping onto preset {self.best_preset!r}:")
            lines.append(str(self.report))
        return "\n".join(lines)


def inspect_checkpoint(path_or_state, label: str | None = None) -> Inspection:
    """Format, the presets the checkpoint fits completely, and the mapping report onto the best-fitting preset.
    ``label`` names an already-loaded checkpoint object in the output (default: its path, or ``<in-memory>``)."""
    from nnunet_swin.networks.presets import PRESETS
    from nnunet_swin.networks.segmentation import ENCODER_KEYS
    if label is None:
        label = os.fspath(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else "<in-memory>"
    obj = read_checkpoint(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    wrapper, state = unwrap(obj)
    fmt = detect_format(state)
    mapping = map_keys(state, fmt)
    embed = mapping.mapped.get("patch_embed.proj.weight")
    in_ch = int(embed.shape[1]) if embed is not None and embed.ndim == 5 else None
    family = FORMATS[fmt].family
    scored = []
    for name, preset in PRESETS.items():
        if family is not None and family != ("smit" if preset["skip_taps"] == "smit" else "swin_unetr"):
            continue
        with torch.device("meta"):
            enc = SwinEncoder(in_ch or 1, **{k: preset[k] for k in ENCODER_KEYS if k in preset})
        _, rep = adapt_state(mapping, enc.state_dict(), compute=False)
        bad = len(rep.missing) + len(rep.unexpected) + len(rep.shape_mismatched)
        scored.append((bad, len(rep.adapted) + len(rep.new), name, rep))
    scored.sort(key=lambda t: (t[0], t[1]))  # a plain preset before its variant (whose own modules are new)
    fits = [name for bad, _, name, _ in scored if bad == 0]
    best = scored[0] if scored else None
    return Inspection(label, wrapper, fmt, family, in_ch, len(state), fits,
                      best[2] if best else None, best[3] if best else None)
