"""The CT-like synthetic corpus: CT contrast per tissue class, tissue map consistent with the tumour label."""
import json

import numpy as np
import SimpleITK as sitk

from nnunet_swin.datasets.synthetic import SyntheticSpec
from nnunet_swin.datasets.synthetic_ct import HU, TISSUES, CTSpec, make_ct_corpus, synthesize_ct_case

SPEC = CTSpec(anatomy=SyntheticSpec(fov_mm=48, z_median_mm=24, z_iqr_mm=(20, 28), short_share=0.0), vary=False)
VARIED = CTSpec(anatomy=SPEC.anatomy, vary=True)


def test_tissues_carry_their_hounsfield_units_and_the_tumour_label():
    case = synthesize_ct_case(np.random.default_rng(3), SPEC, "dark")
    img, tissue = case["image"], case["tissue"]
    assert img.shape == tissue.shape == case["label"].shape
    assert np.array_equal(case["label"] > 0, tissue == TISSUES.index("tumour"))
    median = {n: float(np.median(img[tissue == i])) for i, n in enumerate(TISSUES) if (tissue == i).sum() > 100}
    for name in ("air", "fat", "soft_tissue", "muscle", "bladder"):
        if name in median:
            assert abs(median[name] - HU[name]) < 40, (name, median)
    assert median["air"] < median["lumen"] < -500 < median["fat"] < 0 < median["soft_tissue"]   # gas, fat, water
    assert 0.7 <= case["spacing"][0] <= 0.9 and 1.0 <= case["spacing"][2] <= 2.5


def test_corpus_is_deterministic_and_written_whole(tmp_path):
    a = make_ct_corpus(tmp_path / "a", 2, SPEC)
    b = make_ct_corpus(tmp_path / "b", 2, SPEC)
    for name in ("ct_000.nii.gz", "ct_001.nii.gz"):
        ia = sitk.GetArrayFromImage(sitk.ReadImage(str(a / "images" / name)))
        ib = sitk.GetArrayFromImage(sitk.ReadImage(str(b / "images" / name)))
        assert np.array_equal(ia, ib)
        assert (a / "tissues" / name).is_file()
    meta = json.loads((a / "corpus.json").read_text())
    assert meta["tissues"] == list(TISSUES) and len(meta["cases"]) == 2


def test_varied_volumes_differ_in_field_of_view_texture_and_contrast_the_plain_phantom_does_not():
    def stats(spec, i):
        case = synthesize_ct_case(np.random.default_rng([0, i]), spec, "dark")
        img, tissue = case["image"], case["tissue"]
        soft = img[tissue == TISSUES.index("soft_tissue")]
        return [img.shape[0] * case["spacing"][0], float(np.median(soft)), float(soft.std()),
                float((tissue == TISSUES.index("air")).mean())]
    varied = np.array([stats(VARIED, i) for i in range(6)])
    plain = np.array([stats(SPEC, i) for i in range(6)])
    spread_v, spread_p = varied.std(0), plain.std(0)
    assert spread_v[0] > 3 and spread_p[0] < 0.5                  # field of view (mm)
    assert spread_v[1] > 3 * spread_p[1] and spread_v[2] > 3 * spread_p[2]   # contrast, texture + noise
    assert spread_v[3] > spread_p[3]                               # how much of the field the body fills
