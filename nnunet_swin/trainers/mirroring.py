"""The left-right axis for flips (the paper's horizontal-flip test-time augmentation).

nnU-Net reads images into (Z, Y, X) arrays; for axial acquisitions in the usual orientation X (array axis 2) is
left-right. The plans may then permute the axes (``transpose_forward``: new axis i = original axis
``transpose_forward[i]``), so the left-right axis of the arrays the network sees is where 2 went.
"""
from __future__ import annotations

from typing import Sequence

ORIGINAL_LEFT_RIGHT_AXIS = 2  # X in nnU-Net's (Z, Y, X) arrays


def left_right_axis(transpose_forward: Sequence[int], original_axis: int = ORIGINAL_LEFT_RIGHT_AXIS) -> int:
    """Spatial-axis index (0-based, no channel) of the left-right axis after ``transpose_forward``."""
    order = [int(a) for a in transpose_forward]
    if sorted(order) != list(range(len(order))) or original_axis not in order:
        raise ValueError(f"transpose_forward must be a permutation containing axis {original_axis}, got {order}")
    return order.index(original_axis)
