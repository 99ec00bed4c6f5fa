"""Pretrained checkpoints onto ``SwinEncoder``: read, detect the format, map keys, adapt shapes, load, report.

timm's pattern: ``checkpoint_filter(state, encoder)`` is a pure function from a checkpoint dict to (the state dict to
load, the report); ``load_pretrained_encoder`` then copies it in place. ``inspect_checkpoint`` runs the same steps
against every preset of the checkpoint's family, without loading anything.

Rules. Relative-position index buffers are derived, never loaded (each is checked against the standard index and
reported as ignored). Decoder weights, SSL heads and ``mask_token`` are ignored with a reason. A checkpoint of the
other backbone family is refused. Loading refuses (``UserError``) when any encoder parameter stays uncovered, a shape
cannot be adapted, or a checkpoint key maps nowhere, unless ``allow_partial``.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from nnunet_swin.errors import UserError
from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.networks.presets import FAMILY_NAMES, PRESETS
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.networks.weights.adaptation import adapt_state, is_variant_key
from nnunet_swin.networks.weights.formats import FORMATS, detect_format, map_keys
from nnunet_swin.networks.weights.reading import read_checkpoint, unwrap
from nnunet_swin.networks.weights.report import Inspection, LoadReport


def _encoder_of(obj: nn.Module) -> SwinEncoder:
    enc = getattr(obj, "encoder", obj)
    if not isinstance(enc, SwinEncoder):
        raise UserError(f"expected a SwinSegmentationNetwork or SwinEncoder, got {type(obj).__name__}")
    return enc


def checkpoint_filter(state: dict[str, torch.Tensor], encoder: SwinEncoder) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """timm-style filter: any supported checkpoint dict -> (state dict for ``encoder.load_state_dict``, report)."""
    fmt = detect_format(state)
    family = FORMATS[fmt].family
    if family is not None and encoder.family is not None and family != encoder.family:
        raise UserError(f"this is a {FAMILY_NAMES[family]} checkpoint ({fmt}) but the network is configured as "
                        f"{FAMILY_NAMES[encoder.family]}; use the {FAMILY_NAMES[family]} plans/preset")
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


def inspect_checkpoint(path_or_state, label: str | None = None) -> Inspection:
    """Format, the presets the checkpoint fits completely, and the mapping report onto the best-fitting preset.
    ``label`` names an already-loaded checkpoint object in the output (default: its path, or ``<in-memory>``)."""
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
        if family is not None and family != preset["family"]:
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
