"""Shape adaptation: matching mapped checkpoint tensors to the encoder's own state, with the load report.

Different input channels: the patch-embedding kernel ``(E, c_ckpt, p, p, p)`` is tiled over the new channel count and
scaled by ``c_ckpt / c_new`` (timm's rule), so identical channels reproduce the pretrained embedding. Relative-position
tables for another window are interpolated trilinearly over the relative offset grid (``(2w - 1)`` per axis). Both are
reported as adapted; any other shape difference is reported as shape-mismatched.
"""
from __future__ import annotations

from math import ceil

import torch
import torch.nn.functional as F

from nnunet_swin.networks.weights.formats import KeyMapping
from nnunet_swin.networks.weights.report import LoadReport


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
