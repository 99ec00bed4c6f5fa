import numpy as np
import pytest

from nnunet_swin.errors import UserError
from nnunet_swin.geometry.tokens import size_divisor, stage_windows, valid_neighbours
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.geometry.padding import (case_padding_fraction, choose_inplane_crop, choose_z_crop,
                                          padding_fractions, padding_statistics, resampled_shape)


def test_padding_fraction_is_equation_4():
    pf = padding_fractions([32, 64, 100], 64)
    np.testing.assert_allclose(pf, [0.5, 0.0, 0.0])
    assert float(padding_fractions(93, 128)) == pytest.approx(1 - 93 / 128)
    for crop in (0, -4):
        with pytest.raises(UserError, match="positive"):
            padding_fractions(10, crop)


def test_resampled_shape_is_nnunets_rounding():
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

    rng = np.random.default_rng(0)
    for _ in range(50):
        shape = rng.integers(1, 400, 3)
        spacing, target = rng.uniform(0.3, 7, 3), rng.uniform(0.3, 3, 3)
        np.testing.assert_array_equal(resampled_shape(shape, spacing, target), compute_new_shape(shape, spacing, target))


def test_case_padding_fraction_of_a_thick_slice_case():
    # 25 slices of 6.5 mm -> 162 slices at 1 mm: no padding in a 128 crop, but 25 native slices pad 80%
    assert case_padding_fraction((25, 300, 300), (6.5, 0.5, 0.5), 128, target_spacing_z=1.0) == 0.0
    assert case_padding_fraction((25, 300, 300), (6.5, 0.5, 0.5), 128) == pytest.approx(1 - 25 / 128)
    assert case_padding_fraction((300, 300, 25), (0.5, 0.5, 6.5), 128, 1.0, transpose_forward=(2, 0, 1)) == 0.0


def test_statistics_report_share_and_mean():
    s = padding_statistics([32, 48, 64, 128], 64)
    assert s["share_padded"] == 0.5
    assert s["mean_pf"] == pytest.approx((0.5 + 0.25) / 4, abs=1e-4)
    assert s["num_cases"] == 4


def test_z_crop_is_largest_multiple_under_threshold():
    extents = [100] * 19 + [40]        # one short case
    crop, table = choose_z_crop(extents, 32, threshold=0.05)
    assert crop == 96
    assert [row["crop"] for row in table] == [32, 64, 96, 128]
    assert all(row["mean_pf"] <= 0.05 for row in table if row["crop"] <= crop)
    assert table[-1]["mean_pf"] > 0.05


def test_z_crop_never_below_divisor_and_capped():
    assert choose_z_crop([5, 6, 7], 32)[0] == 32
    assert choose_z_crop([500] * 10, 32, max_crop=128)[0] == 128


def test_bad_threshold_is_refused():
    with pytest.raises(UserError, match="threshold"):
        choose_z_crop([100], 32, threshold=1.5)


def test_inplane_crop_reduced_only_for_small_data():
    assert choose_inplane_crop([300, 400], 128, 32) == 128
    assert choose_inplane_crop([90, 96, 100], 128, 32) == 96
    assert choose_inplane_crop([20, 30, 33], 128, 32) == 64      # never below two divisors
    with pytest.raises(UserError, match="multiple"):
        choose_inplane_crop([300], 100, 32)


def test_window_padding_swin_unetr_vs_smit_on_act_crop():
    swin = stage_windows([64, 128, 128], get_preset("swin_unetr"))
    smit = stage_windows([64, 128, 128], get_preset("smit"))
    # window 7 does not divide the z token grids 32, 16, 8 -> padded to 35, 21, 14 (stage 3: 4 tokens, shrunk)
    assert [s.padded_size[0] for s in swin] == [35, 21, 14, 4]
    assert swin[3].window[0] == 4
    assert all(s.window_padding_fraction > 0 for s in swin[:3])
    assert all(s.window_padding_fraction == 0 for s in smit)
    assert size_divisor(get_preset("smit")) == size_divisor(get_preset("swin_unetr")) == 32


def test_valid_neighbours():
    assert valid_neighbours(100, 32) == (96, 128)
    assert valid_neighbours(64, 32) == (64, 96)
    assert valid_neighbours(10, 32) == (32, 32)
