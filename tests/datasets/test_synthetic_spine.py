import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_swin.datasets.synthetic_spine import LABELS, SpineSpec, make_spine_dataset, synthesize_spine
from nnunet_swin.errors import UserError


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_a_chain_of_vertebrae_discs_and_canal(modality):
    spec = SpineSpec(modality=modality, fov_mm=60)
    case = synthesize_spine(np.random.default_rng([1, 0]), spec)
    label, img = case["label"], case["image"]
    levels = case["levels"]
    assert 5 <= levels <= 7
    assert set(np.unique(label)) == {0, *range(1, levels + 1), 8, 9}
    centres = [np.argwhere(label == v)[:, 2].mean() for v in range(1, levels + 1)]
    assert all(np.diff(centres) > 0)                                   # ordered along z
    assert case["spacing"][2] > case["spacing"][0]                     # anisotropic
    bone, disc = img[label == 1].mean(), img[label == 8].mean()
    assert (bone > disc) if modality == "CT" else (disc > bone)        # CT: bone bright; T2: disc bright


def test_dataset_is_deterministic_and_varies_per_case(tmp_path):
    spec = SpineSpec(num_train=3, num_test=1, fov_mm=50, seed=4)
    a = make_spine_dataset(tmp_path / "a", 502, spec=spec, progress=False)
    b = make_spine_dataset(tmp_path / "b", 502, spec=spec, progress=False)
    files = sorted((a / "labelsTr").iterdir())
    for f in files:
        assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(f))),
                              sitk.GetArrayFromImage(sitk.ReadImage(str(b / "labelsTr" / f.name))))
    shapes = {sitk.ReadImage(str(f)).GetSize() for f in files}
    assert len(shapes) > 1                                             # sizes and spacings vary
    assert json.loads((a / "dataset.json").read_text())["labels"] == LABELS
    with pytest.raises(UserError, match="modality"):
        make_spine_dataset(tmp_path / "c", 503, spec=SpineSpec(modality="PET"), progress=False)
