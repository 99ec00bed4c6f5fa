"""Per-case metrics and the edge-case policy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import dice, measure_case, surface_dice, volume_ratio
from nnunet_swin.evaluation.hausdorff import MISSED_HAUSDORFF_MM

SPACING = (3.0, 0.5, 0.5)


def box(shape=(10, 20, 20), lo=(2, 4, 4), hi=(6, 12, 12)):
    m = np.zeros(shape, bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return m


def test_overlapping_case():
    ref, pred = box(), box(lo=(2, 4, 4), hi=(6, 12, 16))
    out = measure_case(pred, ref, SPACING, hd95=True, crop_depth=16)
    assert out["dice"] == pytest.approx(2 * 256 / (256 + 384))
    assert out["volume_ratio"] == pytest.approx(1.5)
    assert out["volume_ref_mm3"] == pytest.approx(256 * 0.75)
    assert out["detected"] == 1.0
    assert out["surface_dice"] == pytest.approx(surface_dice(pred, ref, SPACING))
    assert 0 < out["hd95"] <= 2.0 + 1e-9  # the extra 4 voxels are 2 mm
    assert out["padding_fraction"] == pytest.approx(1 - 10 / 16)
    assert not out["ref_empty"] and not out["pred_empty"]


def test_missed_case_and_threshold():
    ref = box()
    missed = measure_case(np.zeros_like(ref), ref, SPACING, hd95=True)
    assert (missed["dice"], missed["surface_dice"], missed["volume_ratio"], missed["detected"]) == (0, 0, 0, 0)
    assert missed["hd95"] == MISSED_HAUSDORFF_MM
    sliver = box(lo=(2, 4, 4), hi=(3, 5, 12))  # Dice = 2*8/(8+256) ~ 0.06
    assert measure_case(sliver, ref, SPACING)["detected"] == 0.0
    assert measure_case(sliver, ref, SPACING, detection_threshold=0.05)["detected"] == 1.0


def test_empty_reference_cases():
    empty = np.zeros((10, 20, 20), bool)
    fp = measure_case(box(), empty, SPACING)
    assert fp["dice"] == 0 and fp["surface_dice"] == 0
    assert math.isnan(fp["volume_ratio"]) and math.isnan(fp["detected"]) and fp["ref_empty"]
    both = measure_case(empty, empty, SPACING, hd95=True)
    assert all(math.isnan(both[k]) for k in ("dice", "surface_dice", "volume_ratio", "detected", "hd95"))


def test_small_functions():
    assert math.isnan(dice(np.zeros(3, bool), np.zeros(3, bool)))
    assert volume_ratio(5, 0) != volume_ratio(5, 0)  # NaN


def test_padding_fraction_follows_transpose_forward_and_the_crop_spacing():
    """The crop's z is the plans' first axis (raw axis transpose_forward[0]); pf uses the resampled extent there."""
    ref = np.zeros((20, 10, 30), bool)  # raw (Z, Y, X); thick slices along the last raw axis here
    ref[5:8, 2:5, 10:20] = True
    spacing = (1.0, 1.0, 3.0)
    native = measure_case(ref, ref, spacing, crop_depth=64)
    assert native["padding_fraction"] == pytest.approx(1 - 20 / 64)  # axis 0, native slices
    moved = measure_case(ref, ref, spacing, crop_depth=64, transpose_forward=(2, 0, 1))
    assert moved["padding_fraction"] == pytest.approx(1 - 30 / 64)
    resampled = measure_case(ref, ref, spacing, crop_depth=64, crop_spacing_z=1.0, transpose_forward=(2, 0, 1))
    assert resampled["padding_fraction"] == 0.0  # 30 slices x 3 mm = 90 slices at 1 mm > 64
