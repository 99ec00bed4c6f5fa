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
    from nnunet_swin.workflows.study_arms import DEMO_Z_EXTENTS

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


# ---------------------------------------------------------------------------------- the continuous appearance model

def _latents(spec, subtype, n=300, seed=11, pf_bin=None):
    from nnunet_swin.datasets.synthetic import draw_latents
    return pd.DataFrame([draw_latents(np.random.default_rng([seed, i]), spec, subtype, pf_bin) for i in range(n)])


def _demo_spec(**kw):
    from nnunet_swin.workflows.study_arms import DEMO_SYNTHETIC
    return SyntheticSpec(**{**DEMO_SYNTHETIC, **kw})


def test_continuous_subtypes_overlap_but_differ_in_distribution():
    from scipy.stats import mannwhitneyu, spearmanr

    spec = _demo_spec()
    bright, dark = _latents(spec, "bright"), _latents(spec, "dark")
    for col in ("contrast_to_wall", "edge_mm"):      # overlapping supports ...
        assert bright[col].min() < dark[col].max() and dark[col].min() < bright[col].max()
        assert mannwhitneyu(bright[col], dark[col]).pvalue < 1e-6               # ... different distributions
    assert bright.contrast_to_wall.median() > dark.contrast_to_wall.median() + 0.3
    assert 0.2 < (dark.contrast_to_wall < 0).mean() < 0.6                       # dark tumours darker than the wall
    assert (bright.contrast_to_wall < 0).mean() < 0.02
    for group in (bright, dark):                      # edge width follows contrast, but is not determined by it
        rho = spearmanr(group.contrast_to_wall, group.edge_mm)[0]
        assert -0.9 < rho < -0.3
    # tumour volume: one law for both subtypes
    assert mannwhitneyu(bright.tumour_volume_drawn_mm3, dark.tumour_volume_drawn_mm3).pvalue > 0.01
    assert bright.tumour_volume_drawn_mm3.min() < 1000 and dark.tumour_volume_drawn_mm3.max() > 10000


def test_tumour_size_does_not_follow_the_scan_length():
    from scipy.stats import spearmanr

    latents = pd.concat([_latents(_demo_spec(), t, n=200, seed=12) for t in ("bright", "dark")])
    rho, p = spearmanr(latents.tumour_volume_drawn_mm3, latents.z_extent_mm)
    assert abs(rho) < 0.15, (rho, p)
    z_radius = latents.radii_mm.map(lambda r: r[2])
    assert abs(spearmanr(z_radius, latents.z_extent_mm)[0]) < 0.15
    assert (2 * z_radius > latents.z_extent_mm).any()     # some tumours are longer than their scan (then cropped)


def test_a_dark_tumour_can_be_darker_than_the_wall_and_keeps_its_drawn_size():
    spec = SyntheticSpec(appearance="continuous", fov_mm=48, contrast_dark=(-0.3, 0.01), z_median_mm=60,
                         z_iqr_mm=(55, 65), short_share=0.0, volume_mm3=(4000, 4001))
    case = synthesize_case(np.random.default_rng([3, 0]), spec, "dark")
    img, lab = case["image"], case["label"].astype(bool)
    assert case["contrast_to_wall"] < -0.25
    assert img[lab].mean() < 245 * 0.9                   # below the wall's intensity (245, before noise and bias)
    assert 0.3 < case["tumour_volume_mm3"] / case["tumour_volume_drawn_mm3"] < 3


def test_stratified_test_split_covers_every_subtype_and_pf_bin():
    from nnunet_swin.datasets.synthetic import PF_BINS, assign_cases

    spec = _demo_spec(num_train=32, num_test=48)
    subtypes, strata = assign_cases(spec)
    assert subtypes[:32].count("dark") == 8 and strata[:32] == [None] * 32
    cells = pd.Series(list(zip(subtypes[32:], strata[32:]))).value_counts()
    assert len(cells) == 6 and set(cells) == {8}
    for b in PF_BINS:
        z = _latents(spec, "dark", n=20, seed=13, pf_bin=b).z_extent_mm.round()
        pf = np.maximum(1 - z / 64, 0)
        assert {"pf=0": (pf == 0).all(), "0<pf<0.5": ((pf > 0) & (pf < 0.5)).all(), "pf>=0.5": (pf >= 0.5).all()}[b]


def test_generator_hash_is_stable_and_follows_the_spec(tmp_path):
    from nnunet_swin.datasets.synthetic import generator_record

    spec = _demo_spec(num_train=2, num_test=0, fov_mm=48)
    assert generator_record(spec) == generator_record(SyntheticSpec(**{**spec.__dict__}))
    assert generator_record(spec)["hash"] != generator_record(_demo_spec(num_train=2, num_test=0, fov_mm=48,
                                                                          seed=1))["hash"]
    assert generator_record(spec)["hash"] != generator_record(_demo_spec(num_train=2, num_test=0, fov_mm=48,
                                                                          contrast_dark=(0.0, 0.15)))["hash"]
    folder = make_demo_dataset(tmp_path, 604, spec=spec, progress=False)
    import json
    assert json.loads((folder / "generator.json").read_text()) == json.loads(json.dumps(generator_record(spec)))
    truth = pd.read_csv(folder / "subtypes_truth.csv")
    assert {"contrast_to_wall", "edge_mm", "tumour_volume_drawn_mm3", "pf_cubic64", "stratum"} <= set(truth.columns)
