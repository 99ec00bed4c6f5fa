"""Token-grid arithmetic of a 3D Swin encoder, without torch: the one copy the encoder, the planner and the docs use.

Sizes are per axis in whatever order the caller uses (nnU-Net's (Z, Y, X) in the planner); windows here are cubic.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil


def size_divisor(arch_kwargs: dict) -> int:
    """Input sides must be multiples of this: patch embedding x 2^(number of patch mergings)."""
    patch = max(arch_kwargs["patch_size"])
    return patch * 2 ** len(arch_kwargs["depths"])


def effective_window(size: tuple[int, ...], window: tuple[int, ...], shrink: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(window, shift) a stage uses on a feature map of ``size`` tokens.

    Shift is half the window (floor). With ``shrink`` (MONAI), an axis whose size is not larger than the window gets
    window = size and shift 0; without it (SMIT) the window is kept and the map padded.
    """
    win = list(window)
    shift = [w // 2 for w in window]
    if shrink:
        for i, s in enumerate(size):
            if s <= window[i]:
                win[i], shift[i] = s, 0
    return tuple(win), tuple(shift)


def padded_size(size: tuple[int, ...], window: tuple[int, ...]) -> tuple[int, ...]:
    """Feature-map size after right-padding every axis to a multiple of the window (Swin's window padding)."""
    return tuple(int(ceil(s / w)) * w for s, w in zip(size, window))


@dataclass(frozen=True)
class StageWindows:
    stage: int
    feature_size: tuple[int, ...]   # tokens per axis entering the stage's blocks
    window: tuple[int, ...]         # effective window per axis (after MONAI-style shrinking, if enabled)
    padded_size: tuple[int, ...]    # feature map padded to a window multiple
    window_padding_fraction: float  # share of the padded token grid that is Swin's own window padding


def stage_windows(patch_size: list[int] | tuple[int, ...], arch_kwargs: dict) -> list[StageWindows]:
    """Per Swin stage: feature-map size, effective window and the extra window padding it causes.

    Swin pads every feature map to a multiple of the window before partitioning; with window 7 (Swin UNETR) the
    token grids 32, 16, 8 of a 64-voxel crop are padded to 35, 21, 14. SMIT's window 4 divides them.
    """
    out = []
    size = tuple(p // e for p, e in zip(patch_size, arch_kwargs["patch_size"]))
    for stage in range(len(arch_kwargs["depths"])):
        win, _ = effective_window(size, tuple(arch_kwargs["window_size"]), arch_kwargs.get("shrink_window", False))
        padded = padded_size(size, win)
        n_real, n_all = 1, 1
        for s, p in zip(size, padded):
            n_real *= s
            n_all *= p
        out.append(StageWindows(stage, size, win, padded, 1.0 - n_real / n_all))
        size = tuple(ceil(s / 2) for s in size)
    return out


def valid_neighbours(side: int, divisor: int) -> tuple[int, int]:
    """The nearest multiples of ``divisor`` below and above ``side`` (for error messages)."""
    lower = max(divisor, (side // divisor) * divisor)
    upper = max(divisor, -(-side // divisor) * divisor)
    if upper == lower == side:
        upper = side + divisor
    return lower, upper
