"""Real/padding status of Swin tokens, propagated from the voxel mask through patch embedding and merges.

Paper section 2.4: a merged token is real if any of its constituent tokens is real (max-pooling over the binary
mask). Odd feature-map sides are right-padded with padding before a 2x2x2 merge, as the merge pads its input.
Arrays are (B, Z, Y, X) bool, True = real, in nnU-Net's axis order.
"""
from __future__ import annotations

from math import ceil

import numpy as np
import torch
import torch.nn.functional as F

from nnunet_swin.analysis.attention_dilution import INPUT_PAD, REAL, WINDOW_PAD


def pool_token_mask(mask: torch.Tensor, factor: int | tuple[int, int, int] = 2) -> torch.Tensor:
    """(B, Z, Y, X) bool -> (B, ceil(Z/f), ceil(Y/f), ceil(X/f)) bool: real if any voxel of the block is real."""
    f = (factor,) * 3 if isinstance(factor, int) else tuple(factor)
    m = mask.to(torch.float32).unsqueeze(1)
    pad = []
    for side, k in zip(reversed(m.shape[2:]), reversed(f)):
        pad += [0, (-side) % k]
    if any(pad):
        m = F.pad(m, pad, value=0.0)
    return F.max_pool3d(m, kernel_size=f, stride=f).squeeze(1) > 0.5


def stage_token_masks(voxel_mask: torch.Tensor, patch_size: tuple[int, int, int] | list[int],
                      num_stages: int) -> list[torch.Tensor]:
    """Token masks entering each Swin stage: patch embedding, then one 2x2x2 merge per stage after the first."""
    masks = [pool_token_mask(voxel_mask, tuple(patch_size))]
    for _ in range(num_stages - 1):
        masks.append(pool_token_mask(masks[-1], 2))
    return masks


def window_token_kinds(token_mask: torch.Tensor, window: tuple[int, int, int] | list[int]) -> torch.Tensor:
    """(B, Z, Y, X) bool -> (B, Zp, Yp, Xp) int8 on the grid padded to window multiples at the far end:
    0 real, 1 input padding, 2 Swin window padding."""
    kinds = torch.where(token_mask, REAL, INPUT_PAD).to(torch.int8)
    pad = []
    for side, w in zip(reversed(kinds.shape[1:]), reversed(list(window))):
        pad += [0, (-side) % w]
    if any(pad):
        kinds = F.pad(kinds.unsqueeze(1).float(), pad, value=float(WINDOW_PAD)).squeeze(1).to(torch.int8)
    return kinds


def expected_padding_shares(crop_size: list[int], real_extent: list[int], arch_kwargs: dict) -> list[dict]:
    """Per stage, the share of tokens that are input padding and window padding for a scan placed in the crop
    (centred, see ``crop_placement``), from the geometry alone. For reports and the planner's arithmetic."""
    from nnunet_swin.analysis.crop_placement import centred_mask

    mask = torch.from_numpy(centred_mask(crop_size, real_extent))[None]
    out = []
    for stage, m in enumerate(stage_token_masks(mask, arch_kwargs["patch_size"], len(arch_kwargs["depths"]))):
        window = list(arch_kwargs["window_size"])
        if arch_kwargs.get("shrink_window", False):
            window = [min(w, s) for w, s in zip(window, m.shape[1:])]
        kinds = window_token_kinds(m, window).numpy()
        n = kinds.size
        out.append({"stage": stage, "tokens": list(m.shape[1:]), "window": window,
                    "input_pad_share": float(np.sum(kinds == INPUT_PAD) / n),
                    "window_pad_share": float(np.sum(kinds == WINDOW_PAD) / n),
                    "padded_tokens": [ceil(s / w) * w for s, w in zip(m.shape[1:], window)]})
    return out
