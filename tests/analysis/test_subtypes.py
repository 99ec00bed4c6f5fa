import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from nnunet_swin.analysis.subtypes import (FEATURES, SubtypeModel, assign_subtypes, boundary_band, choose_k,
                                           fit_subtypes, tumor_features)
from nnunet_swin.errors import UserError


def _case(rng, bright, shape=(12, 32, 32)):
    z, y, x = np.indices(shape)
    r = rng.uniform(4, 7)
    label = ((z - 6) ** 2 * 4 + (y - 16) ** 2 + (x - 16) ** 2) < r ** 2
    img = np.full(shape, 300.0)
    inside = 480.0 if bright else 230.0
    sigma = 0.3 if bright else 2.0
    img = img + (ndimage.gaussian_filter(label.astype(float), sigma) * (inside - 300.0))
    img += rng.normal(0, 10, shape)
    img[:, :2] = 0                  # zero padding that must not count as background
    return img, label.astype(np.uint8)


def test_features_are_the_seven_and_sensible():
    rng = np.random.default_rng(0)
    img, lab = _case(rng, bright=True)
    f = tumor_features(img, lab, (3.0, 1.0, 1.0))
    assert tuple(f) == FEATURES
    assert f["contrast"] > 0 and f["cnr"] > 0
    assert f["tumour_volume"] == pytest.approx(lab.sum() * 3.0)
    dark = tumor_features(*_case(rng, bright=False), (3.0, 1.0, 1.0))
    assert dark["boundary_gradient"] < f["boundary_gradient"]
    assert dark["contrast"] < f["contrast"]


def test_background_ignores_zero_voxels():
    img = np.full((4, 8, 8), 10.0)
    img[:, :4] = 0.0
    lab = np.zeros_like(img, dtype=np.uint8)
    lab[1:3, 5:7, 3:5] = 1
    img[lab > 0] = 20.0
    f = tumor_features(img, lab, (1, 1, 1), normalise=False)
    assert f["background_intensity"] == 10.0
    assert f["contrast"] == 10.0


def test_boundary_band_is_three_voxels_thick():
    lab = np.zeros((1, 1, 20), bool)
    lab = np.zeros((20, 20, 20), bool)
    lab[5:15, 5:15, 5:15] = True
    band = boundary_band(lab)
    line = band[10, 10]
    assert line.nonzero()[0].tolist() == [4, 5, 6, 13, 14, 15]


def test_empty_label_is_a_user_error():
    with pytest.raises(UserError, match="no tumour"):
        tumor_features(np.ones((4, 4, 4)), np.zeros((4, 4, 4)), (1, 1, 1))


def _table(n_per, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(2 * n_per):
        bright = i % 2 == 0
        f = tumor_features(*_case(rng, bright), (3.0, 1.0, 1.0))
        rows.append({"case_id": f"c{i:03d}", "truth": "B" if bright else "D", **f})
    return pd.DataFrame(rows).set_index("case_id")


def test_fit_recovers_two_subtypes_and_applies_to_new_cases(tmp_path):
    train, test = _table(8, seed=1), _table(4, seed=2)
    model = fit_subtypes(train, seed=0)
    assert model.k == 2
    assert [r["k"] for r in model.validity] == [2, 3, 4, 5]
    path = tmp_path / "model.json"
    model.save(path)
    loaded = SubtypeModel.load(path)
    out = assign_subtypes(loaded, test)
    assert (out["subtype"] == out["truth"]).all()
    assert (assign_subtypes(model, train)["subtype"] == train["truth"]).all()


def test_fewer_cases_than_k_is_a_user_error():
    with pytest.raises(UserError, match="too few"):
        fit_subtypes(_table(1), k=2)


def test_k_range_is_capped_by_the_number_of_cases():
    model = fit_subtypes(_table(2))
    assert max(r["k"] for r in model.validity) == 3


def test_choose_k_majority_with_silhouette_tie_break():
    v = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.5, 0.6, 0.1], "calinski_harabasz": [10, 5, 1],
                      "davies_bouldin": [0.4, 0.9, 1.0]})
    assert choose_k(v) == 2
    v2 = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.5, 0.6, 0.1], "calinski_harabasz": [10, 5, 20],
                       "davies_bouldin": [0.9, 0.4, 1.0]})
    assert choose_k(v2) == 3


def test_only_the_tumour_labels_count_as_tumour():
    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, (8, 16, 16))
    label = np.zeros(image.shape, np.uint8)
    label[2:6, 4:8, 4:8] = 1            # tumour
    label[2:6, 8:12, 8:12] = 2          # rectal wall, much brighter
    image[label == 2] += 200
    only_tumour = tumor_features(image, label, (1.0, 1.0, 1.0), normalise=False, tumor_labels=[1])
    every_label = tumor_features(image, label, (1.0, 1.0, 1.0), normalise=False)
    assert only_tumour["tumour_intensity"] == pytest.approx(image[label == 1].mean())
    assert every_label["tumour_intensity"] > only_tumour["tumour_intensity"] + 50
    assert only_tumour["tumour_volume"] == pytest.approx(64.0)
