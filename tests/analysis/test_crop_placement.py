import numpy as np
import pytest

from nnunet_swin.analysis.crop_placement import place_in_crop


def test_placement_reports_eq4_padding_fraction():
    assert place_in_crop(np.ones((1, 93, 4, 4), np.float32), [128, 4, 4]).pf == pytest.approx(1 - 93 / 128)
    assert place_in_crop(np.ones((1, 140, 4, 4), np.float32), [128, 4, 4]).pf == 0.0


def test_short_axis_is_zero_padded_centred_and_long_axis_centre_cropped():
    data = np.arange(1 * 5 * 10 * 4, dtype=np.float32).reshape(1, 5, 10, 4) + 1
    p = place_in_crop(data, (8, 6, 4))
    assert p.data.shape == (1, 8, 6, 4)
    assert p.mask[1:6].all() and not p.mask[0].any() and not p.mask[6:].any()   # 3 pad: 1 before, 2 after
    np.testing.assert_array_equal(p.data[0, 1:6], data[0, :, 2:8])               # y: 10 -> centre 6
    assert (p.data[0, 0] == 0).all()
    assert p.pf == pytest.approx(1 - 5 / 8)
    assert p.pf_voxels == pytest.approx(3 / 8)
    assert p.cropped and p.extent == (5, 10, 4)


def test_wrong_dimensionality_is_refused():
    with pytest.raises(ValueError):
        place_in_crop(np.zeros((4, 4, 4)), (4, 4, 4))
