"""Transitional: the token-kind propagation now lives in ``nnunet_swin.networks.token_kinds`` (the one copy the encoder
runs). These two names remain only for ``tests/analysis/test_dilution_report.py``; delete this module once that test
imports ``networks.token_kinds`` directly."""
from __future__ import annotations

import torch

from nnunet_swin.networks.token_kinds import (TOKEN_INPUT_PADDING, TOKEN_REAL, embedded_kinds, merged_kinds,
                                              window_padded_kinds)


def stage_token_masks(voxel_mask: torch.Tensor, patch_size, num_stages: int) -> list[torch.Tensor]:
    """(B, Z, Y, X) bool -> the bool masks (True = real) entering each Swin stage."""
    kinds = [embedded_kinds(voxel_mask, tuple(patch_size))]
    for _ in range(num_stages - 1):
        kinds.append(merged_kinds(kinds[-1]))
    return [k == TOKEN_REAL for k in kinds]


def window_token_kinds(token_mask: torch.Tensor, window) -> torch.Tensor:
    """(B, Z, Y, X) bool -> int8 kinds on the grid padded to window multiples."""
    return window_padded_kinds(torch.where(token_mask, TOKEN_REAL, TOKEN_INPUT_PADDING).to(torch.int8), tuple(window))
