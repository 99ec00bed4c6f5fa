"""Pretrained checkpoints onto ``SwinEncoder``: read, detect the format, map keys, adapt shapes, load, report.

timm's pattern: ``checkpoint_filter(state, encoder)`` is a pure function from a checkpoint dict to (the state dict to
load, the report); ``load_pretrained_encoder`` then copies it in place. ``inspect_checkpoint`` runs the same steps
against every preset of the checkpoint's family, without loading anything.

Rules. Relative-position index buffers are derived, never loaded (each is checked against the standard index and
reported as ignored). Decoder weights, SSL heads and ``mask_token`` are ignored with a reason. A checkpoint of the
other backbone family, width (feature size), depth or V2-ness is refused in one line naming both and the preset that
fits. The patch-merging order is the network's ``merge_order`` switch: public Swin UNETR checkpoints run with
``legacy`` (all were trained with MONAI < 1.5), a MONAI >= 1.5 checkpoint is declared by choosing a ``monai16``
preset (or ``merge_order=`` here), our own checkpoints carry theirs in their metadata; the report says which and why.
Loading refuses (``UserError``) when any encoder parameter stays uncovered, a shape cannot be adapted, or a
checkpoint key maps nowhere, unless ``allow_partial``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
from torch import nn

from nnunet_swin.errors import UserError
from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.networks.presets import FAMILY_NAMES, PRESETS
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.networks.weights.adaptation import adapt_state, is_variant_key
from nnunet_swin.networks.weights.formats import FORMATS, KeyMapping, detect_format, map_keys
from nnunet_swin.networks.weights.metadata import read_pretraining_metadata
from nnunet_swin.networks.weights.reading import read_checkpoint, unwrap
from nnunet_swin.networks.weights.report import Inspection, LoadReport

PUBLIC_MERGE_ORDER = "legacy"  # MONAI < 1.5 PatchMerging: what every public Swin UNETR checkpoint was trained with


@dataclass(frozen=True)
class Architecture:
    """What a checkpoint's (or an encoder's) shapes say about the encoder: family, feature size, depths, V2."""
    family: str | None
    width: int | None
    depths: tuple[int, ...]
    v2: bool

    def __str__(self) -> str:
        name = FAMILY_NAMES.get(self.family, "Swin") if self.family else "Swin"
        depths = "-".join(map(str, self.depths)) if self.depths else "?"
        return f"{name}{'-V2' if self.v2 else ''} feature size {self.width}, depths {depths}"


def checkpoint_architecture(mapping: KeyMapping, family: str | None) -> Architecture:
    """Feature size from the patch embedding, depths from the block indices, V2 from the residual blocks."""
    embed = mapping.mapped.get("patch_embed.proj.weight")
    blocks: dict[int, set[int]] = {}
    for key in mapping.mapped:
        m = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.", key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    depths = tuple(max(blocks[i]) + 1 for i in sorted(blocks))
    return Architecture(family, int(embed.shape[0]) if embed is not None else None, depths,
                        any(".residual." in k for k in mapping.mapped))


def encoder_architecture(encoder: SwinEncoder) -> Architecture:
    return Architecture(encoder.family, encoder.embed_dim, tuple(encoder.depths), encoder.use_v2)


def _encoder_of(obj: nn.Module) -> SwinEncoder:
    enc = getattr(obj, "encoder", obj)
    if not isinstance(enc, SwinEncoder):
        raise UserError(f"expected a SwinSegmentationNetwork or SwinEncoder, got {type(obj).__name__}")
    return enc


def _checkpoint_merge_order(fmt: str, declared: str | None) -> str | None:
    """The order the checkpoint was trained with: declared (metadata, user), else the public default, else None."""
    if declared is not None:
        return declared
    family = FORMATS[fmt].family
    return {"swin_unetr": PUBLIC_MERGE_ORDER, "smit": "smit"}.get(family) if family else None


def _merge_reason(fmt: str, encoder: SwinEncoder, declared: str | None, from_metadata: bool) -> str:
    order = encoder.merge_order
    if declared is not None and declared != order:
        raise UserError(f"this checkpoint was trained with patch-merging order {declared!r} but the network uses "
                        f"{order!r}; plan with a preset whose merge_order is {declared!r} (e.g. "
                        f"{'swin_unetr_monai15' if declared == 'monai16' else 'swin_unetr'})")
    if declared is not None:
        return ("recorded in the checkpoint's metadata" if from_metadata
                else "declared for this checkpoint (no key can tell the orders apart)")
    if FORMATS[fmt].family == "swin_unetr":
        if order == PUBLIC_MERGE_ORDER:
            return ("MONAI < 1.5 PatchMerging, as every public Swin UNETR checkpoint was trained (no key can tell "
                    "the orders apart; a checkpoint trained with MONAI >= 1.5 is declared by the preset "
                    "swin_unetr_monai15)")
        if order == "monai16":
            return "MONAI >= 1.5 PatchMerging, declared by the preset (merge_order monai16)"
        return f"the preset's merge_order {order!r}"
    if FORMATS[fmt].family == "smit":
        return "SMIT's own order"
    return "the network's plans (our own checkpoint records none)"


def fitting_presets(mapping: KeyMapping, family: str | None, in_channels: int,
                    merge_order: str | None = None) -> list[tuple[int, int, str, LoadReport]]:
    """Every preset of ``family`` (and ``merge_order``, when known) scored by how the mapping lands on it:
    ``(missing + unexpected + shape-mismatched, adapted + new, name, report)``, best first. Built on the meta
    device: no memory, no weights."""
    scored = []
    for name, preset in PRESETS.items():
        if family is not None and family != preset["family"]:
            continue
        if merge_order is not None and preset["merge_order"] != merge_order:
            continue
        with torch.device("meta"):
            enc = SwinEncoder(in_channels, **{k: preset[k] for k in ENCODER_KEYS if k in preset})
        _, rep = adapt_state(mapping, enc.state_dict(), compute=False)
        bad = len(rep.missing) + len(rep.unexpected) + len(rep.shape_mismatched)
        scored.append((bad, len(rep.adapted) + len(rep.new), name, rep))
    scored.sort(key=lambda t: (t[0], t[1]))  # a plain preset before its variant (whose own modules are new)
    return scored


def checkpoint_filter(state: dict[str, torch.Tensor], encoder: SwinEncoder, *, merge_order: str | None = None,
                      merge_from_metadata: bool = False) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """timm-style filter: any supported checkpoint dict -> (state dict for ``encoder.load_state_dict``, report).
    ``merge_order``: the order the checkpoint was trained with when known (metadata, or the user's declaration)."""
    fmt = detect_format(state)
    family = FORMATS[fmt].family
    if family is not None and encoder.family is not None and family != encoder.family:
        raise UserError(f"this is a {FAMILY_NAMES[family]} checkpoint ({fmt}) but the network is configured as "
                        f"{FAMILY_NAMES[encoder.family]}; use the {FAMILY_NAMES[family]} plans/preset")
    mapping = map_keys(state, fmt)
    ours, theirs = encoder_architecture(encoder), checkpoint_architecture(mapping, family or encoder.family)
    if theirs.width is not None and (theirs.width, theirs.v2, theirs.depths) != (ours.width, ours.v2, ours.depths):
        embed = mapping.mapped["patch_embed.proj.weight"]
        fits = [name for bad, _, name, _ in fitting_presets(mapping, family or encoder.family, int(embed.shape[1]),
                                                             _checkpoint_merge_order(fmt, merge_order))
                if bad == 0]
        hint = f"plan with -backbone {fits[0]}" if fits else "no preset fits it (see `nnunet-swin weights inspect`)"
        raise UserError(f"this checkpoint is {theirs} ({fmt}) but the network is {ours}; {hint}")
    reason = _merge_reason(fmt, encoder, merge_order, merge_from_metadata)
    out, report = adapt_state(mapping, encoder.state_dict())
    report.merge_order, report.merge_reason = encoder.merge_order, reason
    return out, report


def _declared_merge_order(obj, merge_order: str | None) -> tuple[str | None, bool]:
    metadata = read_pretraining_metadata(obj)
    recorded = ((metadata or {}).get("arch_kwargs") or {}).get("merge_order")
    if merge_order is not None:
        return merge_order, False
    return recorded, recorded is not None


def load_pretrained_encoder(network_or_encoder: nn.Module, path_or_state, *, allow_partial: bool = False,
                            merge_order: str | None = None) -> LoadReport:
    """Load a pretrained checkpoint (path or already-loaded object) into the network's encoder; returns the report.

    ``merge_order``: declare the patch-merging order the checkpoint was trained with (``monai16`` for MONAI >= 1.5);
    by default our checkpoints' metadata says, and public checkpoints are ``legacy``.
    Raises ``UserError`` on an unreadable file, an unknown layout, the other backbone's checkpoint, another width,
    or incomplete coverage of the encoder (unless ``allow_partial``; then whatever matched is loaded).
    """
    encoder = _encoder_of(network_or_encoder)
    obj = read_checkpoint(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    _, state = unwrap(obj)
    declared, from_metadata = _declared_merge_order(obj, merge_order)
    out, report = checkpoint_filter(state, encoder, merge_order=declared, merge_from_metadata=from_metadata)
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


def inspect_checkpoint(path_or_state, label: str | None = None, merge_order: str | None = None) -> Inspection:
    """Format and source, architecture, the presets the checkpoint fits completely, and the mapping report onto the
    best-fitting preset (with the merge order it would run with). ``label`` names an already-loaded checkpoint
    object in the output (default: its path, or ``<in-memory>``); ``merge_order`` declares the checkpoint's order."""
    if label is None:
        label = os.fspath(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else "<in-memory>"
    obj = read_checkpoint(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    wrapper, state = unwrap(obj)
    fmt = detect_format(state)
    mapping = map_keys(state, fmt)
    embed = mapping.mapped.get("patch_embed.proj.weight")
    in_ch = int(embed.shape[1]) if embed is not None and embed.ndim == 5 else None
    family = FORMATS[fmt].family
    declared, from_metadata = _declared_merge_order(obj, merge_order)
    scored = fitting_presets(mapping, family, in_ch or 1, _checkpoint_merge_order(fmt, declared))
    fits = [name for bad, _, name, _ in scored if bad == 0]
    best = scored[0] if scored else None
    report = best[3] if best else None
    if report is not None:
        preset = PRESETS[best[2]]
        with torch.device("meta"):
            enc = SwinEncoder(in_ch or 1, **{k: preset[k] for k in ENCODER_KEYS if k in preset})
        report.merge_order = enc.merge_order
        report.merge_reason = _merge_reason(fmt, enc, declared, from_metadata)
    return Inspection(label, wrapper, fmt, FORMATS[fmt].source, family,
                      str(checkpoint_architecture(mapping, family)), in_ch, len(state), fits,
                      best[2] if best else None, report)


def describe_checkpoints(path: str | os.PathLike, backbone: str | None = None,
                         merge_order: str | None = None) -> str:
    """``weights inspect``'s text: for each checkpoint ``checkpoints_to_inspect`` finds (a folder's files under a
    ``== name`` header), ``inspect_checkpoint`` and, for our own checkpoints, what their metadata says."""
    from nnunet_swin.networks.weights.location import checkpoints_to_inspect
    from nnunet_swin.networks.weights.metadata import describe

    files = checkpoints_to_inspect(path, backbone)
    parts = []
    for i, file in enumerate(files):
        if len(files) > 1:
            parts.append(("\n" if i else "") + f"== {file.name} (used for backbone {file.stem!r})")
        obj = read_checkpoint(file)  # read once: checkpoints can be large
        parts.append(str(inspect_checkpoint(obj, label=str(file), merge_order=merge_order)))
        metadata = read_pretraining_metadata(obj)
        if metadata is not None:
            parts.append(describe(metadata))
    return "\n".join(parts)
