import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from nnunet_swin.datasets.synthetic import SyntheticSpec, _draw_z_extent, make_demo_dataset, synthesize_case
from nnunet_swin.errors import UserError


def test_z_extents_spread_like_the_paper_cohort():
    rng = np.random.default_rng(0)
    z = np.array([_draw_z_extent(rng, SyntheticSpec()) for _ in range(4000)])
    q1, med, q3 = np.percentile(z, [25, 50, 75])
    assert 80 <= med <= 95 and 55 <= q1 <= 75 and 100 <= q3 <= 118
    assert np.mean(z < 50) > 0.05                         # some far shorter scans


def test_demo_study_cohort_pads_under_the_cubic_crop_as_the_paper_cohort_does():
    """The study demo's z-extents against its 64^3 crop: most scans padded (paper: 78.1%, mean pf 0.270 at 128),
    while the anisotropic 32-slice crop pads almost none."""
    from nnunet_swin.geometry.padding import padding_fractions
    from nnunet_swin.workflows.study import DEMO_Z_EXTENTS

    rng = np.random.default_rng(0)
    spec = SyntheticSpec(**DEMO_Z_EXTENTS)
    z = np.array([_draw_z_extent(rng, spec) for _ in range(4000)])
    assert z.min() >= spec.short_mm[0] and z.max() <= spec.z_clip_mm[1]
    cubic, act = padding_fractions(z, 64), padding_fractions(z, 32)
    assert 0.7 <= np.mean(cubic > 0) <= 0.9 and 0.2 <= cubic.mean() <= 0.35
    assert act.mean() <= 0.06 and act.mean() < cubic.mean() / 4


def test_subtypes_differ_in_contrast_and_edges():
    spec = SyntheticSpec()
    contrast = {"bright": [], "dark": []}
    for i in range(6):
        for subtype in contrast:
            case = synthesize_case(np.random.default_rng([7, i]), spec, subtype)
            img, lab = case["image"], case["label"].astype(bool)
            assert lab.any()
            assert 0.35 <= case["spacing"][0] <= 0.65 and 3.0 <= case["spacing"][2] <= 4.0
            ring = np.zeros_like(lab)
            from scipy import ndimage
            ring = ndimage.binary_dilation(lab, iterations=3) & ~lab
            contrast[subtype].append(img[lab].mean() / img[ring].mean())
    assert min(contrast["bright"]) > 1.15 > max(contrast["dark"])


def test_dataset_is_deterministic_and_in_nnunet_layout(tmp_path):
    spec = SyntheticSpec(num_train=3, num_test=2, fov_mm=48, seed=3)
    a = make_demo_dataset(tmp_path / "a", 601, spec=spec, progress=False)
    b = make_demo_dataset(tmp_path / "b", 601, spec=spec, progress=False)
    assert a.name == "Dataset601_SyntheticRectum"
    for sub, n in (("imagesTr", 3), ("labelsTr", 3), ("imagesTs", 2), ("labelsTs", 2)):
        files = sorted((a / sub).iterdir())
        assert len(files) == n
        for f in files:
            arr_a = sitk.GetArrayFromImage(sitk.ReadImage(str(f)))
            arr_b = sitk.GetArrayFromImage(sitk.ReadImage(str(b / sub / f.name)))
            assert np.array_equal(arr_a, arr_b)
    truth = pd.read_csv(a / "subtypes_truth.csv")
    assert set(truth.subtype) <= {"bright", "dark"} and len(truth) == 5
    lab = sitk.ReadImage(str(a / "labelsTr" / "syntheticrectum_000.nii.gz"))
    assert set(np.unique(sitk.GetArrayFromImage(lab))) <= {0, 1}
    with pytest.raises(UserError, match="already exists"):
        make_demo_dataset(tmp_path / "a", 601, spec=spec, progress=False)
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_two_channels_and_three_labels(tmp_path):
    spec = SyntheticSpec(num_train=2, num_test=1, fov_mm=48, seed=1, channels=("T2", "DWI"), labels="tumour+wall+nodes")
    folder = make_demo_dataset(tmp_path, 602, spec=spec, progress=False)
    import json
    dataset_json = json.loads((folder / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "T2", "1": "DWI"}
    assert dataset_json["labels"] == {"background": 0, "tumour": 1, "rectal_wall": 2, "lymph_node": 3}
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == ["syntheticrectum_002_0000.nii.gz",
                                                                      "syntheticrectum_002_0001.nii.gz"]
    t2 = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "imagesTr" / "syntheticrectum_000_0000.nii.gz")))
    dwi = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "imagesTr" / "syntheticrectum_000_0001.nii.gz")))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / "syntheticrectum_000.nii.gz")))
    assert t2.shape == dwi.shape == label.shape and set(np.unique(label)) == {0, 1, 2, 3}
    assert dwi[label == 1].mean() > 2 * dwi[label == 0].mean()      # restricted diffusion: tumour bright on DWI
    # the default dataset is unchanged by the extras (same seed, same T2 and tumour)
    plain = synthesize_case(np.random.default_rng([5, 0]), SyntheticSpec(), "dark")
    extra = synthesize_case(np.random.default_rng([5, 0]), SyntheticSpec(labels="tumour+wall+nodes"), "dark")
    assert np.array_equal(plain["image"], extra["image"]) and np.array_equal(plain["label"], extra["label"] == 1)
    with pytest.raises(UserError, match="label sets"):
        make_demo_dataset(tmp_path, 603, spec=SyntheticSpec(channels=("DWI",)), progress=False)
