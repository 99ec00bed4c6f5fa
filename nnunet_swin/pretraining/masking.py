"""Block masks for masked image modelling: random (SMIT) and attention-guided (SMART).

A crop of side ``S`` (voxels, per axis) is cut into cubic blocks of ``block`` voxels (SMIT: 16), a grid of
``S / block`` blocks per axis. Exactly ``ceil(n_blocks * ratio)`` blocks are masked per view (SMIT: ratio 0.7, so
152 of the 216 blocks of a 96^3 crop), independently per view and sample. Masks are ``(B, Gd, Gh, Gw)`` bool on the
block grid; ``to_resolution`` maps them onto any token grid (patch embedding, stage 3) or onto voxels.

``ibot_block_mask``: iBOT's variable masking (per-view ratios from ``ibot_view_ratios``) (``--pred_ratio 0 0.3 --pred_ratio_var 0 0.2``): a share of the views
(0.5) is left unmasked, the others get a ratio drawn uniformly from ``[ratio - var, ratio + var]`` (0.1-0.5).

Axis order: whatever order the crop has; the functions never permute.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def block_grid(crop: tuple[int, int, int], block: int) -> tuple[int, int, int]:
    """Blocks per axis; ``ValueError`` unless every side is a multiple of ``block``."""
    if any(s % block for s in crop):
        raise ValueError(f"crop {tuple(crop)} is not a multiple of the mask block {block} on every axis")
    return tuple(s // block for s in crop)


def masked_count(n_blocks: int, ratio: float) -> int:
    """``ceil(n_blocks * ratio)`` (SMIT), kept below ``n_blocks`` so one block stays visible."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    return min(int(math.ceil(n_blocks * ratio - 1e-9)), n_blocks - 1)


def random_block_mask(batch: int, grid: tuple[int, int, int], ratio: float,
                      generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``(B, *grid)`` bool, exactly ``masked_count`` True per sample, positions uniformly at random."""
    n = grid[0] * grid[1] * grid[2]
    k = masked_count(n, ratio)
    scores = torch.rand((batch, n), generator=generator)
    idx = scores.argsort(dim=1)[:, :k]
    mask = torch.zeros((batch, n), dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask.view(batch, *grid).to(device) if device is not None else mask.view(batch, *grid)


def ibot_block_mask(batch: int, grid: tuple[int, int, int], ratio: float = 0.3, ratio_var: float = 0.2,
                    unmasked_share: float = 0.5, generator: torch.Generator | None = None, device=None
                    ) -> torch.Tensor:
    """``(B, *grid)`` bool: each view unmasked with probability ``unmasked_share``, else ``masked_count(n, r)``
    random blocks with ``r ~ U[ratio - ratio_var, ratio + ratio_var]`` (iBOT; kept inside (0, 1))."""
    n = grid[0] * grid[1] * grid[2]
    ratios = ibot_view_ratios(batch, ratio, ratio_var, unmasked_share, generator)
    scores = torch.rand((batch, n), generator=generator)
    mask = torch.zeros((batch, n), dtype=torch.bool)
    for i, r in enumerate(ratios):
        if r > 0:
            mask[i, scores[i].argsort()[:masked_count(n, r)]] = True
    mask = mask.view(batch, *grid)
    return mask.to(device) if device is not None else mask


def ibot_view_ratios(batch: int, ratio: float = 0.3, ratio_var: float = 0.2, unmasked_share: float = 0.5,
                     generator: torch.Generator | None = None) -> list[float]:
    """iBOT's per-view mask ratios: 0.0 (unmasked) with probability ``unmasked_share``, else ``r ~ U[ratio -
    ratio_var, ratio + ratio_var]`` (kept inside (0, 1)). Draws ``(batch, 2)`` uniforms from ``generator``."""
    draws = torch.rand((batch, 2), generator=generator)
    return [0.0 if float(d[0]) < unmasked_share else
            min(max(ratio - ratio_var + 2.0 * ratio_var * float(d[1]), 1e-6), 1.0 - 1e-6) for d in draws]


def attention_guided_mask(block_attention: torch.Tensor, ratio, random_share: float,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """SMART's selective masking (AttMask-style "mask the most attended") mixed with random blocks.

    ``block_attention`` ``(B, Gd, Gh, Gw)`` float: the teacher's class-token attention per block. Of the
    ``k = masked_count`` masked blocks, ``k - round(k * random_share)`` are the most attended ones (ties broken by
    position order) and the remaining ``round(k * random_share)`` are drawn uniformly from the other blocks.
    Returns ``(B, Gd, Gh, Gw)`` bool with exactly ``k`` True per sample. ``ratio`` may also be one ratio per sample
    (``ibot_view_ratios``; 0.0 leaves that view unmasked), so SMART's guided masks follow ``--masking ibot``.
    [unverified: SMART's public text does not give the share; ``random_share`` is the switch.]
    """
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random share must be in [0, 1], got {random_share}")
    b, grid = block_attention.shape[0], tuple(block_attention.shape[1:])
    n = grid[0] * grid[1] * grid[2]
    att = block_attention.detach().reshape(b, n).float().cpu()
    order = torch.sort(att, dim=1, descending=True, stable=True).indices
    mask = torch.zeros((b, n), dtype=torch.bool)
    if isinstance(ratio, (int, float)):          # one ratio for every view (SMIT's fixed 0.7)
        k = masked_count(n, ratio)
        k_random = int(round(k * random_share))
        k_top = k - k_random
        mask.scatter_(1, order[:, :k_top], True)
        if k_random:
            rest = order[:, k_top:]
            scores = torch.rand(rest.shape, generator=generator)
            pick = torch.gather(rest, 1, scores.argsort(dim=1)[:, :k_random])
            mask.scatter_(1, pick, True)
        return mask.view(b, *grid).to(block_attention.device)
    ratios = [float(r) for r in ratio]
    if len(ratios) != b:
        raise ValueError(f"{len(ratios)} mask ratios for {b} views")
    scores = torch.rand((b, n), generator=generator)
    for i, r in enumerate(ratios):
        if r <= 0:
            continue
        k = masked_count(n, r)
        k_random = int(round(k * random_share))
        k_top = k - k_random
        mask[i, order[i, :k_top]] = True
        if k_random:
            rest = order[i, k_top:]
            mask[i, rest[scores[i, :rest.numel()].argsort()[:k_random]]] = True
    return mask.view(b, *grid).to(block_attention.device)


def to_resolution(mask: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """Map a block mask ``(B, Gd, Gh, Gw)`` onto a grid ``size`` (finer or coarser), ``(B, *size)`` bool.

    Finer grids (voxels, patch tokens) repeat each block; coarser grids mark a cell masked when at least half of it
    is masked. With SMIT's defaults (block 16, patch 2) stage-3 tokens (stride 16) coincide with the blocks.
    """
    m = mask.to(torch.float32).unsqueeze(1)
    if all(s >= g and s % g == 0 for s, g in zip(size, mask.shape[1:])):
        factors = [s // g for s, g in zip(size, mask.shape[1:])]
        out = m.repeat_interleave(factors[0], 2).repeat_interleave(factors[1], 3).repeat_interleave(factors[2], 4)
    else:
        out = F.adaptive_avg_pool3d(m, size) if all(s <= g for s, g in zip(size, mask.shape[1:])) else \
            F.interpolate(m, size=size, mode="nearest")
    return out[:, 0] >= 0.5


def attention_to_blocks(token_attention: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Per-token attention ``(B, D, H, W)`` (summing to 1 over tokens) -> per-block attention ``(B, *grid)``:
    the attention mass of the tokens inside each block (block-replicated when the blocks are finer)."""
    a = token_attention.to(torch.float32).unsqueeze(1)
    d = tuple(a.shape[2:])
    if all(t >= g for t, g in zip(d, grid)):
        out = F.adaptive_avg_pool3d(a, grid) * (math.prod(d) / math.prod(grid))
    else:
        out = F.interpolate(a, size=grid, mode="nearest") * (math.prod(d) / math.prod(grid))
    return out[:, 0]
