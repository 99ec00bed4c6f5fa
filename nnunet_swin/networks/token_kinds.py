"""Token kinds of the Swin encoder: real image tokens, zero-padding of the input, Swin's own window padding.

Paper section 2.4: a token is real if any voxel (patch embedding) or any constituent token (2x2x2 patch merging) it
covers is real, i.e. max-pooling of the binary mask; odd sides are padded before a merge, and that pad is not real.
Maps are ``(B, D, H, W)`` int8 in the caller's axis order (the encoder's own inside the network). The encoder tracks
kinds for attention probes and padding-key exclusion; the attention-dilution analysis reads them from probe events.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from nnunet_swin.geometry.tokens import padded_size

TOKEN_REAL, TOKEN_INPUT_PADDING, TOKEN_WINDOW_PADDING = 0, 1, 2
NNUNET_PADDING_VALUE = 0.0  # what nnU-Net pads images with, in training (data loader, spatial aug) and prediction


def real_voxels_by_value(x: torch.Tensor, padding_value: float = NNUNET_PADDING_VALUE) -> torch.Tensor:
    """The padding rule of the Masked arm: ``x (B, C, ...)`` -> bool ``(B, ...)``, True on real voxels.

    A voxel is padding when it equals ``padding_value`` exactly in every channel; a token is then padding when every
    voxel it covers is (``embedded_kinds``). It needs nothing but the network's input, so training and stock
    ``nnUNetv2_predict`` apply the same rule: both pad with 0 (nnU-Net's data loader ``crop_and_pad_nd(data, bbox, 0)``,
    the spatial augmentation's zero fill, the predictor's ``pad_nd_image(..., 'constant', {'value': 0})``).
    """
    return (x != padding_value).any(dim=1)


def _real_or_input_padding(real: torch.Tensor) -> torch.Tensor:
    return torch.where(real > 0, TOKEN_REAL, TOKEN_INPUT_PADDING).to(torch.int8)


def embedded_kinds(real: torch.Tensor, patch_size: tuple[int, int, int]) -> torch.Tensor:
    """``real (B, D, H, W)`` bool, True on image voxels -> kinds ``(B, D/p, H/p, W/p)`` after the patch embedding
    (sides floor-divided, as the strided convolution does)."""
    pooled = F.max_pool3d(real.to(torch.float32).unsqueeze(1), patch_size, patch_size)[:, 0]
    return _real_or_input_padding(pooled)


def merged_kinds(kinds: torch.Tensor) -> torch.Tensor:
    """Kinds ``(B, D, H, W)`` -> ``(B, ceil(D/2), ceil(H/2), ceil(W/2))`` after a 2x2x2 patch merging: real if any
    constituent is real, input padding otherwise."""
    real = (kinds == TOKEN_REAL).to(torch.float32).unsqueeze(1)
    return _real_or_input_padding(F.max_pool3d(real, 2, 2, ceil_mode=True)[:, 0])


def window_padded_kinds(kinds: torch.Tensor, window: tuple[int, ...]) -> torch.Tensor:
    """Kinds ``(B, D, H, W)`` -> the map right-padded to window multiples (``geometry.padded_size``), the new
    positions marked ``TOKEN_WINDOW_PADDING``."""
    pad = [p - s for p, s in zip(padded_size(tuple(kinds.shape[1:4]), tuple(window)), kinds.shape[1:4])]
    if not any(pad):
        return kinds
    return F.pad(kinds, (0, pad[2], 0, pad[1], 0, pad[0]), value=TOKEN_WINDOW_PADDING)
