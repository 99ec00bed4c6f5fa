"""Placing a preprocessed scan into a network crop the way a fixed-geometry training crop sees it.

Rule (stated once, used by ADI and CKA): along every axis independently, a scan shorter than the crop is
zero-padded symmetrically (centred; an odd remainder goes to the far end), a scan longer than the crop is
centre-cropped (not tiled). Arrays are (C, Z, Y, X), nnU-Net's order after its ``transpose_forward``.

Padding fraction, paper equation (4): pf = max(1 - L / C, 0) with L the scan's extent and C the crop size
along Z (axis 0 of the spatial axes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnunet_swin.geometry.padding import padding_fractions  # paper eq. 4, one implementation


def _placement(side: int, crop: int) -> tuple[slice, slice]:
    """(source slice, target slice) along one axis."""
    if side >= crop:
        start = (side - crop) // 2
        return slice(start, start + crop), slice(0, crop)
    start = (crop - side) // 2
    return slice(0, side), slice(start, start + side)


def centred_mask(crop_size: list[int] | tuple[int, ...], extent: list[int] | tuple[int, ...]) -> np.ndarray:
    """Bool (Z, Y, X) of crop_size, True where a scan of the given extent lands (real voxels)."""
    mask = np.zeros(tuple(crop_size), dtype=bool)
    mask[tuple(_placement(e, c)[1] for e, c in zip(extent, crop_size))] = True
    return mask


@dataclass
class CropPlacement:
    data: np.ndarray         # (C, *crop) float32, zeros where padded
    mask: np.ndarray         # (*crop) bool, True = real voxel
    pf: float                # eq. (4) along Z
    pf_voxels: float         # share of the crop's voxels that are padding
    extent: tuple[int, ...]  # the scan's (Z, Y, X) size before placement
    cropped: bool            # True if some axis was centre-cropped


def place_in_crop(data: np.ndarray, crop_size: list[int] | tuple[int, ...]) -> CropPlacement:
    """data (C, Z, Y, X) -> the crop (zero-pad shorter axes centred, centre-crop longer ones) and its mask."""
    if data.ndim != 1 + len(crop_size):
        raise ValueError(f"data must be (C, Z, Y, X) for a {len(crop_size)}-D crop, got shape {data.shape}")
    extent = tuple(int(s) for s in data.shape[1:])
    src, dst = zip(*(_placement(s, c) for s, c in zip(extent, crop_size)))
    out = np.zeros((data.shape[0], *crop_size), dtype=np.float32)
    out[(slice(None), *dst)] = data[(slice(None), *src)]
    mask = np.zeros(tuple(crop_size), dtype=bool)
    mask[dst] = True
    return CropPlacement(data=out, mask=mask, pf=float(padding_fractions(extent[0], int(crop_size[0]))),
                         pf_voxels=float(1.0 - mask.mean()), extent=extent,
                         cropped=any(s > c for s, c in zip(extent, crop_size)))
