"""The Masked arm: one padding rule for training and prediction, ADI 0 by construction, padding kept exact in training."""
import pytest
import torch
from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform

from nnunet_swin.analysis.crop_placement import place_in_crop
from nnunet_swin.analysis.dilution_report import measure_dilution
from nnunet_swin.augmentation.input_padding import PreserveInputPadding
from nnunet_swin.networks import SwinSegmentationNetwork
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.token_kinds import real_voxels_by_value
from nnunet_swin.trainers import SwinMaskedTrainer, SwinMaskedTrainer_smoke, SwinTATrainer


def _network(seed=0):
    torch.manual_seed(seed)
    return SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")).eval()


def _scan(z=20, seed=0):
    """A z-scored scan of ``z`` slices (no exact zeros), placed in a 64^3 crop as the ADI analysis and nnU-Net do."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(1, z, 64, 64, generator=g).numpy() + 0.5
    return place_in_crop(image, [64, 64, 64])


def test_the_rule_marks_voxels_that_are_the_padding_value_in_every_channel():
    x = torch.ones(1, 2, 2, 2, 2)
    x[0, :, 0, 0, 0] = 0            # both channels 0: padding
    x[0, 0, 1, 1, 1] = 0            # one channel 0 only: real
    real = real_voxels_by_value(x)
    assert real.shape == (1, 2, 2, 2)
    assert not real[0, 0, 0, 0] and real[0, 1, 1, 1] and int(real.sum()) == 7


def test_the_rule_finds_the_geometric_padding_so_stock_predict_masks_what_training_masks():
    net = _network().exclude_input_padding(0.0)
    crop = _scan()
    x = torch.from_numpy(crop.data)[None]
    assert torch.equal(real_voxels_by_value(x)[0], torch.from_numpy(crop.mask))
    with torch.no_grad():
        by_rule = net(x)                                                  # what nnUNetv2_predict calls
        by_geometry = net(x, padding_mask=torch.from_numpy(crop.mask)[None])
    torch.testing.assert_close(by_rule, by_geometry, rtol=0, atol=0)
    plain = _network()                                                    # same weights, padding attended
    with torch.no_grad():
        assert not torch.allclose(plain(x), by_rule, atol=1e-4)


def test_adi_is_zero_by_construction_and_not_without_the_mask():
    items = [(f"case_{z}", _scan(z, seed=z)) for z in (12, 20, 40)]
    masked = measure_dilution(_network().exclude_input_padding(0.0), items)
    plain = measure_dilution(_network(), items)
    for stage in range(4):
        assert (masked[f"adi_s{stage}"] == 0).all(), masked[f"adi_s{stage}"].tolist()
        assert (masked[f"mass_s{stage}"] == 0).all()
    assert (plain["adi_input_s0"] > 0).all() and (plain["adi_s3"] > 0).any()


def test_the_trainer_builds_the_masked_network_and_nnunet_finds_it(trainer_factory, monkeypatch):
    t = trainer_factory(SwinMaskedTrainer, configuration="3d_cubic")
    assert (t.load_pretrained, t.tumor_aware, t.intended_kind, t.num_epochs) == (True, True, "cubic", 500)
    net = SwinMaskedTrainer_smoke.build_network_architecture(t.plans_manager, t.configuration_manager, 1, 2, False)
    assert net.input_padding_value == 0.0 and net.encoder.exclude_padding_keys
    plain = SwinTATrainer.build_network_architecture(t.plans_manager, t.configuration_manager, 1, 2, False)
    assert plain.input_padding_value is None and not plain.encoder.exclude_padding_keys
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    from nnunet_swin._nnunet_ext import ext_trainer_dir
    monkeypatch.setenv("nnUNet_extTrainer", str(ext_trainer_dir()))
    found = recursive_find_trainer_class_by_name("SwinMaskedTrainer")  # as nnUNetv2_predict looks it up
    assert found.__name__ == "SwinMaskedTrainer"
    assert found.build_network_architecture(t.plans_manager, t.configuration_manager, 1, 2, False).input_padding_value \
        == 0.0


def _pipeline(cls):
    return cls.get_training_transforms((32, 64, 64), (-0.5, 0.5), None, (2,), False, use_mask_for_norm=[False],
                                       foreground_labels=[1])


def test_the_padding_guard_wraps_the_intensity_block_only():
    items = _pipeline(SwinMaskedTrainer).transforms
    names = [type(t).__name__ for t in items]
    guard = names.index("PreserveInputPadding")
    assert isinstance(items[guard - 1], SpatialTransform) and isinstance(items[guard + 1], MirrorTransform)
    inner = [type(t).__name__ for t in items[guard].transforms]
    assert inner[0] == "TumorAwareIntensityTransform" and len(inner) == 8    # TA + nnU-Net's 7 intensity transforms
    assert "PreserveInputPadding" not in [type(t).__name__ for t in _pipeline(SwinTATrainer).transforms]
    assert any(isinstance(t, RemoveLabelTansform) for t in items)


@pytest.mark.parametrize("transform", [
    GaussianNoiseTransform(noise_variance=(0.1, 0.1), p_per_channel=1),
    ContrastTransform(contrast_range=BGContrast((1.5, 1.5)), preserve_range=False, synchronize_channels=True,
                      p_per_channel=1)])
def test_intensity_augmentation_moves_padding_unless_guarded(transform):
    torch.manual_seed(0)
    image = torch.randn(2, 16, 16, 16) + 1.0
    image[:, :, :, :5] = 0                                                 # a padded slab, both channels
    bare = transform(image=image.clone())["image"]
    assert (bare[:, :, :, :5] != 0).any()
    guarded = PreserveInputPadding([transform])(image=image.clone())["image"]
    assert (guarded[:, :, :, :5] == 0).all()
    assert (guarded[:, :, :, 5:] != image[:, :, :, 5:]).any()              # the image itself was augmented
    assert torch.equal(real_voxels_by_value(guarded[None]), real_voxels_by_value(image[None]))
