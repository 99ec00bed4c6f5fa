"""Windows on channels-last token maps ``(B, D, H, W, C)``: partition, reverse, and the additive attention masks.

Axes D, H, W are the encoder's own (inside ``SwinSegmentationNetwork``: the checkpoints' X, Y, Z). Windows are
enumerated in raster order over the window grid (D slowest), tokens inside a window in raster order too. The window
sizes themselves (effective window, shift, padded size) are torch-free arithmetic in ``geometry``.
"""
from __future__ import annotations

import torch

# Additive mask value for excluded padding keys. Finite on purpose: a query whose keys are all excluded gets the
# same constant on every logit, so its softmax stays defined (never NaN); exp(-1e4) underflows to exactly 0
# against any real key. It fits float16 and bfloat16.
PADDING_KEY_PENALTY = -1.0e4


def partition(x: torch.Tensor, window: tuple[int, ...]) -> torch.Tensor:
    """``(B, D, H, W, C)`` -> ``(B * nW, N, C)``; sides must be window multiples. Also works without C (int maps)."""
    b, d, h, w = x.shape[:4]
    rest = x.shape[4:]
    x = x.reshape(b, d // window[0], window[0], h // window[1], window[1], w // window[2], window[2], *rest)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, *range(7, 7 + len(rest)))
    return x.reshape(-1, window[0] * window[1] * window[2], *rest)


def reverse(windows: torch.Tensor, window: tuple[int, ...], size: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``(B * nW, N, C)`` -> ``(B, D, H, W, C)`` for ``size = (B, D, H, W)``.

    ``mode="inverse"`` undoes :func:`partition`. ``mode="smit"`` reproduces SMIT's window reverse, which applies the
    partition's permutation ``(0, 1, 3, 5, 2, 4, 6, 7)`` a second time instead of its inverse, so tokens land at
    other positions; the SMIT weights were trained with it.
    """
    b, d, h, w = size
    c = windows.shape[-1]
    grid = (d // window[0], h // window[1], w // window[2])
    x = windows.reshape(b, *grid, *window, c)
    if mode == "inverse":
        x = x.permute(0, 1, 4, 2, 5, 3, 6, 7)
    elif mode == "smit":
        x = x.permute(0, 1, 3, 5, 2, 4, 6, 7)
    else:
        raise ValueError(f"unknown window_reverse {mode!r}; use 'inverse' or 'smit'")
    return x.reshape(b, d, h, w, c)


def shift_mask(padded: tuple[int, ...], window: tuple[int, ...], shift: tuple[int, ...],
               device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask ``(nW, N, N)`` for a shifted block: -100 between tokens from different pre-roll regions, else 0.

    Along each axis of the padded, rolled map the regions are ``[0, P - w)``, ``[P - w, P - s)``, ``[P - s, P)``;
    an axis with shift 0 is one region.
    """
    labels = []
    for p, w, s in zip(padded, window, shift):
        lab = torch.zeros(p, dtype=torch.int64, device=device)
        if s > 0:
            lab[p - w:p - s] = 1
            lab[p - s:] = 2
        labels.append(lab)
    region = labels[0][:, None, None] * 9 + labels[1][None, :, None] * 3 + labels[2][None, None, :]
    win = partition(region.unsqueeze(0), window)  # (nW, N)
    different = win[:, None, :] != win[:, :, None]
    return torch.zeros(different.shape, dtype=dtype, device=device).masked_fill_(different, -100.0)


def add_masks_(scores: torch.Tensor, bias: torch.Tensor, shift_mask: torch.Tensor | None,
               key_padding: torch.Tensor | None, key_bias: torch.Tensor | None = None) -> None:
    """Add the relative-position bias ``(h, N, N)``, the shift mask ``(nW, N, N)``, the padding-key penalty
    (``key_padding (B * nW, N)`` bool, True = excluded key) and the adaptive key bias (``key_bias (B * nW, h, N)``,
    one additive score per key and head) in place to ``scores (B, nW, h, N, N)``."""
    scores.add_(bias.to(scores.dtype))
    if key_bias is not None:
        b, nw, h, _, n = scores.shape
        scores.add_(key_bias.to(scores.dtype).view(b, nw, h, 1, n))
    if shift_mask is not None:
        scores.add_(shift_mask.to(scores.dtype).unsqueeze(1))
    if key_padding is not None:
        b, nw, _, _, n = scores.shape
        scores.add_((key_padding.to(scores.dtype) * PADDING_KEY_PENALTY).view(b, nw, 1, 1, n))
