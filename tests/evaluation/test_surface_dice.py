"""Surface Dice against an independent DeepMind-algorithm oracle, DeepMind's published cases and MONAI."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy import ndimage

from deepmind_surface_oracle import deepmind_robust_hausdorff, deepmind_surface_dice, oracle_area_table
from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import hausdorff_distance, surface_dice, surface_distances, surfel_area_table

_module = sys.modules["nnunet_swin.evaluation.surface_dice"]

SPACINGS = [(0.43, 0.43, 3.0), (3.0, 0.43, 0.43), (3.0, 2.0, 1.0), (2.0, 1.0, 1.0), (1.7, 0.3, 2.9)]


def blob(rng, shape, sigma=2.0, level=0.5):
    return ndimage.gaussian_filter(rng.random(shape), sigma) > level


@pytest.mark.parametrize("spacing", SPACINGS + [(1.0, 1.0, 1.0)])
def test_area_table_matches_deepmind_published_table_via_monai(spacing):
    from monai.metrics.utils import get_code_to_measure_table

    published = get_code_to_measure_table(spacing)[0].double().numpy()  # DeepMind's normals table, float32
    ours = surfel_area_table(spacing)
    assert ours.shape == (256,)
    np.testing.assert_allclose(ours, published, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(oracle_area_table(tuple(map(float, spacing))), published, rtol=1e-6, atol=1e-6)
    assert ours[0] == 0 and ours[255] == 0 and np.all(ours[1:255] > 0)


def test_deepmind_case_two_voxels_2mm_apart():
    gt = np.zeros((100, 100, 100), bool)
    pred = gt.copy()
    gt[50, 60, 70] = True
    pred[50, 60, 72] = True
    assert surface_dice(pred, gt, (3, 2, 1), tolerance_mm=1) == pytest.approx(0.5, abs=1e-12)
    assert deepmind_surface_dice(gt, pred, (3, 2, 1), 1) == pytest.approx(0.5, abs=1e-12)
    assert surface_dice(pred, gt, (3, 2, 1), tolerance_mm=2) == pytest.approx(1.0)


def test_deepmind_case_half_space_shifted_by_one_voxel():
    gt = np.zeros((100, 100, 100), bool)
    pred = gt.copy()
    gt[:50] = True
    pred[:51] = True
    ours = surface_dice(pred, gt, (2, 1, 1), tolerance_mm=1)
    assert ours == pytest.approx(0.836, abs=5e-4)
    assert ours == pytest.approx(deepmind_surface_dice(gt, pred, (2, 1, 1), 1), abs=1e-12)


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("seed", range(4))
def test_equals_oracle_on_random_anisotropic_blobs(spacing, seed):
    rng = np.random.default_rng(seed)
    shape = (24, 30, 14)
    ref, pred = blob(rng, shape), blob(rng, shape, sigma=2.5, level=0.52)
    for tol in (0.0, 1.0, 2.0, 3.5):
        assert surface_dice(pred, ref, spacing, tol) == pytest.approx(
            deepmind_surface_dice(ref, pred, spacing, tol), abs=1e-6)
    assert hausdorff_distance(pred, ref, spacing) == pytest.approx(
        deepmind_robust_hausdorff(ref, pred, spacing, 95), abs=1e-9)


def test_equals_oracle_on_objects_touching_the_volume_border():
    rng = np.random.default_rng(7)
    ref = blob(rng, (16, 20, 10), sigma=1.5, level=0.48)
    pred = np.roll(ref, 2, axis=2)
    ref[:, :, 0] = True
    spacing = (0.43, 0.43, 3.0)
    assert surface_dice(pred, ref, spacing) == pytest.approx(deepmind_surface_dice(ref, pred, spacing, 2.0), abs=1e-9)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("spacing", [(0.43, 0.43, 3.0), (3.0, 2.0, 1.0)])
def test_equals_monai_use_subvoxels(spacing):
    import torch
    from monai.metrics import compute_surface_dice

    rng = np.random.default_rng(11)
    ref, pred = blob(rng, (26, 22, 12)), blob(rng, (26, 22, 12))
    monai = compute_surface_dice(torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None],
                                 class_thresholds=[2.0], include_background=True, spacing=spacing,
                                 use_subvoxels=True)
    assert surface_dice(pred, ref, spacing, 2.0) == pytest.approx(float(monai[0, 0]), abs=1e-5)


def test_thresholded_dilation_equals_edt_path():
    rng = np.random.default_rng(3)
    for spacing in [(0.43, 0.43, 3.0), (0.5, 0.5, 0.5), (2.0, 1.0, 1.0), (1.1, 0.7, 2.3)]:
        targets = rng.random((18, 21, 15)) > 0.97
        for tol in (0.0, 0.5, 1.0, 2.0, 3.1, 9.0):  # 9 mm reaches past the array at 0.5 mm
            expected = ndimage.distance_transform_edt(~targets, sampling=spacing) <= tol
            np.testing.assert_array_equal(_module._near(targets, spacing, tol), expected)
        ref, pred = blob(rng, (20, 20, 12)), blob(rng, (20, 20, 12))
        via_edt = _module.surface_dice_from_distances(surface_distances(pred, ref, spacing), 2.0)
        assert surface_dice(pred, ref, spacing, 2.0) == pytest.approx(via_edt, abs=1e-12)


def test_empty_masks_policy():
    empty = np.zeros((8, 9, 10), bool)
    full = empty.copy()
    full[2:5, 3:6, 4:8] = True
    assert math.isnan(surface_dice(empty, empty, (1, 1, 1)))
    assert surface_dice(empty, full, (1, 1, 1)) == 0.0
    assert surface_dice(full, empty, (1, 1, 1)) == 0.0
    assert surface_dice(full, full, (3.0, 0.4, 0.4)) == 1.0
    assert math.isnan(hausdorff_distance(empty, empty, (1, 1, 1)))
    assert hausdorff_distance(full, empty, (1, 1, 1)) == math.inf


def test_spacing_axis_order_matters():
    """A one-slice shift along a 3 mm axis exceeds a 2 mm tolerance; the same shift along 0.43 mm does not."""
    ref = np.zeros((20, 40, 40), bool)
    ref[5:12, 10:30, 10:30] = True
    pred = np.roll(ref, 1, axis=0)
    assert surface_dice(pred, ref, (3.0, 0.43, 0.43)) < 0.9
    assert surface_dice(pred, ref, (0.43, 0.43, 3.0)) == 1.0


def test_accepts_integer_masks_and_rejects_bad_input():
    ref = np.zeros((6, 7, 8), np.uint8)
    ref[2:4, 2:5, 3:6] = 1
    assert surface_dice(ref, ref.astype(bool), (1, 1, 1)) == 1.0
    with pytest.raises(UserError, match="same shape"):
        surface_dice(ref[:-1], ref, (1, 1, 1))
    with pytest.raises(UserError, match="spacing"):
        surface_dice(ref, ref, (1, 1))
    with pytest.raises(UserError, match="spacing"):
        surface_dice(ref, ref, (1, 0, 1))
    with pytest.raises(UserError, match="3D"):
        surface_dice(ref[0], ref[0], (1, 1, 1))
    with pytest.raises(UserError, match="tolerance"):
        surface_dice(ref, ref, (1, 1, 1), tolerance_mm=-1)
