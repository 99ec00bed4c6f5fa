"""Tumour-aware intensity augmentation: eq. (1) on the sample's own [0, 1] frame, property-based."""
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from nnunet_swin.augmentation import TumorAwareIntensityTransform, perturb_tumor_intensity, tumor_mask


@st.composite
def samples(draw, max_side=6):
    """A (C, Z, Y, X) float image and a (1, Z, Y, X) int16 segmentation with labels -1..3."""
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=2, max_size=3)))
    channels = draw(st.integers(1, 2))
    image = draw(arrays(np.float32, (channels, *shape),
                        elements=st.floats(-5, 5, allow_nan=False, width=32)))
    seg = draw(arrays(np.int16, (1, *shape), elements=st.integers(-1, 3)))
    return torch.from_numpy(image), torch.from_numpy(seg)


def _always(**kwargs):
    return TumorAwareIntensityTransform(p_per_sample=1.0, **kwargs)


@settings(max_examples=150, deadline=None)
@given(samples())
def test_outside_the_tumour_nothing_changes_and_shape_dtype_are_kept(sample):
    image, seg = sample
    out = _always()(image=image.clone(), segmentation=seg.clone())
    assert out["image"].shape == image.shape and out["image"].dtype == image.dtype
    assert torch.equal(out["segmentation"], seg)
    outside = ~(seg[0] > 0)
    assert torch.equal(out["image"][:, outside], image[:, outside])  # background and padding (-1) untouched


@st.composite
def unit_frame_samples(draw, side=6):
    """A 1-channel image in the paper's [0, 1] frame (min 0, 99th percentile 1) and a tumour mask inside it."""
    n = side ** 3
    values = draw(arrays(np.float64, n, elements=st.floats(0, 1, allow_nan=False)))
    values[0] = 0.0
    values[-4:] = 1.0  # over 1% of the voxels at 1: the 99th percentile is exactly 1
    mask = draw(arrays(np.bool_, n))
    mask[-4:] = False
    mask[1] = True
    shape = (1, side, side, side)
    return (torch.from_numpy(values.reshape(shape)).float(),
            torch.from_numpy(mask.reshape(shape).astype(np.int16)))


@settings(max_examples=150, deadline=None)
@given(unit_frame_samples(), st.floats(0.5, 1.5), st.floats(-0.2, 0.2))
def test_on_a_unit_frame_image_tumour_voxels_become_alpha_i_plus_beta(sample, alpha, beta):
    """The paper's eq. 1 verbatim: on an image already clipped to the 99th percentile and scaled to [0, 1],
    I'(x) = alpha * I(x) + beta inside the tumour, I'(x) = I(x) elsewhere."""
    image, seg = sample
    transform = _always(alpha_range=(alpha, alpha), beta_range=(beta, beta))
    out = transform(image=image.clone(), segmentation=seg.clone())["image"]
    tumour = seg[0] > 0
    np.testing.assert_allclose(out[0][tumour].numpy(), alpha * image[0][tumour].numpy() + beta, atol=1e-6)
    assert torch.equal(out[0][~tumour], image[0][~tumour])


@settings(max_examples=100, deadline=None)
@given(unit_frame_samples(), st.floats(0.5, 1.5), st.floats(-0.2, 0.2), st.floats(-3, 3), st.floats(0.1, 10))
def test_an_affinely_rescaled_image_is_perturbed_in_its_own_unit_frame(sample, alpha, beta, offset, scale):
    """z-scored input (any I = offset + scale * U of a unit-frame U) gets eq. 1 in U's frame: the augmentation
    commutes with the intensity normalisation."""
    unit, seg = sample
    transform = _always(alpha_range=(alpha, alpha), beta_range=(beta, beta))
    rescaled = transform(image=offset + scale * unit, segmentation=seg.clone())["image"]
    in_unit_frame = transform(image=unit.clone(), segmentation=seg.clone())["image"]
    np.testing.assert_allclose(rescaled.numpy(), (offset + scale * in_unit_frame).numpy(), atol=1e-4 * scale + 1e-5)


@settings(max_examples=100, deadline=None)
@given(samples())
def test_a_patch_without_tumour_passes_through_unchanged(sample):
    image, seg = sample
    seg = seg.clamp(max=0)  # only padding and background
    out = _always()(image=image.clone(), segmentation=seg)
    assert torch.equal(out["image"], image)


def test_only_the_configured_labels_count_as_tumour():
    image = torch.ones(1, 2, 2, 2)
    image[0, 0, 0, 0] = 0.0  # lo = 0
    seg = torch.tensor([[[[0, 1], [2, 3]], [[-1, 1], [2, 3]]]], dtype=torch.int16)
    out = perturb_tumor_intensity(image, tumor_mask(seg[0], [2]), seg[0] >= 0, alpha=0.5, beta=0.0)
    assert torch.all(out[0][seg[0] == 2] == 0.5)
    assert torch.equal(out[0][seg[0] != 2], image[0][seg[0] != 2])
    assert not tumor_mask(seg[0], [0, -1]).any()  # background/padding can never be made tumour


def test_beta_is_a_fraction_of_the_sample_intensity_spread():
    # z-scored-like image: spread [lo, hi] = [-2, 3] -> beta 0.2 shifts by 1.0, alpha 1 keeps contrast
    image = torch.linspace(-2, 3, 101).reshape(1, 1, 1, 101)
    seg = torch.zeros(1, 1, 1, 101, dtype=torch.int16)
    seg[..., 50] = 1
    out = perturb_tumor_intensity(image, seg[0] > 0, seg[0] >= 0, alpha=1.0, beta=0.2, reference_percentiles=(0, 100))
    assert out[0, 0, 0, 50].item() == pytest.approx(image[0, 0, 0, 50].item() + 1.0, abs=1e-6)


def test_padding_voxels_do_not_enter_the_reference_frame():
    image = torch.tensor([[[0.0, 1.0, 0.5, 100.0]]])  # the 100 lies in padding
    seg = torch.tensor([[[0, 0, 1, -1]]], dtype=torch.int16)
    out = perturb_tumor_intensity(image, seg[0] > 0, seg[0] >= 0, alpha=1.0, beta=0.2, reference_percentiles=(0, 100))
    assert out[0, 0, 2].item() == pytest.approx(0.5 + 0.2 * 1.0)
    assert out[0, 0, 3].item() == 100.0


def test_probability_is_per_sample_and_close_to_the_setting():
    torch.manual_seed(0)
    t = TumorAwareIntensityTransform(p_per_sample=0.3)
    draws = [t.get_parameters()["apply"] for _ in range(4000)]
    assert 0.27 < np.mean(draws) < 0.33
    never = TumorAwareIntensityTransform(p_per_sample=0.0)
    image, seg = torch.rand(1, 4, 4, 4), torch.ones(1, 4, 4, 4, dtype=torch.int16)
    assert torch.equal(never(image=image.clone(), segmentation=seg)["image"], image)


def test_sampled_parameters_stay_in_the_paper_ranges():
    torch.manual_seed(1)
    t = _always()
    params = [t.get_parameters() for _ in range(2000)]
    alphas = np.array([p["alpha"] for p in params])
    betas = np.array([p["beta"] for p in params])
    assert alphas.min() >= 0.5 and alphas.max() <= 1.5 and betas.min() >= -0.2 and betas.max() <= 0.2
    assert alphas.max() - alphas.min() > 0.9 and betas.max() - betas.min() > 0.35


def test_transform_is_picklable_for_data_augmentation_workers():
    t = TumorAwareIntensityTransform(tumor_labels=[1, 2])
    clone = pickle.loads(pickle.dumps(t))
    assert clone.tumor_labels == (1, 2) and "TumorAwareIntensityTransform" in repr(clone)


@pytest.mark.parametrize("kwargs", [dict(alpha_range=(1.5, 0.5)), dict(p_per_sample=1.5),
                                    dict(reference_percentiles=(99, 1))])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TumorAwareIntensityTransform(**kwargs)


def test_alpha_and_beta_are_drawn_per_channel_unless_switched_off():
    torch.manual_seed(0)
    image = torch.stack([torch.linspace(0, 1, 64).reshape(4, 4, 4)] * 2)  # two identical [0, 1] channels
    seg = torch.zeros(1, 4, 4, 4, dtype=torch.int16)
    seg[0, 1:3, 1:3, 1:3] = 1
    per_channel = _always(reference_percentiles=None)(image=image.clone(), segmentation=seg.clone())["image"]
    assert not torch.equal(per_channel[0], per_channel[1])
    shared = _always(reference_percentiles=None, per_channel=False)(image=image.clone(), segmentation=seg.clone())
    assert torch.equal(shared["image"][0], shared["image"][1]) and not torch.equal(shared["image"], image)
