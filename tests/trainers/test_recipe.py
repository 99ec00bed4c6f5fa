"""The recipe trainer and its variants, in process, with a stand-in network (no data, no real Swin needed)."""
import inspect
import os
import warnings

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

import nnunet_swin.trainers as trainers
from nnunet_swin.augmentation import TumorAwareIntensityTransform
from nnunet_swin.errors import UserError
from nnunet_swin.trainers import (SwinACTTrainer, SwinACTTrainer_smoke, SwinBaseTrainer, SwinScratchTrainer,
                                  SwinTATrainer)
from nnunet_swin.trainers.recipe import PRETRAINED_REPORT_FILE
from nnunet_swin.trainers.schedule import warmup_cosine_factor


def test_all_lists_exactly_the_trainer_classes_with_unique_names():
    assert set(trainers.__all__) == {n for n in dir(trainers) if isinstance(getattr(trainers, n), type)
                                     and issubclass(getattr(trainers, n), nnUNetTrainer)}
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
    for name in trainers.__all__:
        assert name.startswith("Swin") or name in ("nnUNetTrainer_smoke", "nnUNetTrainer_demo", "nnUNetTrainer_recipe")
        assert recursive_find_python_class(os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer"), name,
                                           "nnunetv2.training.nnUNetTrainer") is None


@pytest.mark.parametrize("name", trainers.__all__)
def test_constructor_signature_is_exactly_nnunets(name):
    ours = inspect.signature(getattr(trainers, name).__init__)
    assert list(ours.parameters) == list(inspect.signature(nnUNetTrainer.__init__).parameters)


def test_the_variant_table(trainer_factory, stand_in_network):
    rows = {}
    for cls, config in [(SwinBaseTrainer, "3d_cubic"), (SwinTATrainer, "3d_cubic"), (SwinACTTrainer, "3d_fullres"),
                        (SwinScratchTrainer, "3d_fullres")]:
        t = trainer_factory(cls, configuration=config)
        rows[cls.__name__] = (t.load_pretrained, t.tumor_aware, t.intended_kind, t.num_epochs)
        assert (t.initial_lr, t.weight_decay, t.warmup_epochs, t.enable_deep_supervision) == (3e-4, 1e-5, 50, False)
    assert rows == {"SwinBaseTrainer": (True, False, "cubic", 500), "SwinTATrainer": (True, True, "cubic", 500),
                    "SwinACTTrainer": (True, True, "anisotropic", 500),
                    "SwinScratchTrainer": (False, True, "anisotropic", 1000)}


def test_adamw_and_resume_with_c_restores_the_learning_rate(trainer_factory, stand_in_network, nnunet_dirs):
    t = trainer_factory(SwinACTTrainer)
    t.initialize()
    assert isinstance(t.optimizer, torch.optim.AdamW) and t.optimizer.defaults["weight_decay"] == 1e-5
    for epoch in range(3):  # a few "epochs" of the real epoch-start hook
        t.current_epoch = epoch
        t.on_train_epoch_start()
    t.current_epoch = 56
    ckpt = os.path.join(t.output_folder, "checkpoint_latest.pth")
    t.save_checkpoint(ckpt)

    resumed = trainer_factory(SwinACTTrainer, continue_training=True)
    resumed.load_checkpoint(ckpt)
    assert resumed.current_epoch == 57
    resumed.on_train_epoch_start()
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * warmup_cosine_factor(57, 50, 500))
    assert resumed.logger.get_value("lrs", step=-1) == pytest.approx(3e-4 * warmup_cosine_factor(57, 50, 500))


def test_flips_only_left_right_in_training_and_inference(trainer_factory, plans_factory, stand_in_network):
    t = trainer_factory(SwinACTTrainer, plans=plans_factory(transpose_forward=(2, 0, 1)))
    _, _, _, mirror_axes = t.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    assert mirror_axes == (0,) and t.inference_allowed_mirroring_axes == (0,)
    t = trainer_factory(SwinACTTrainer)
    assert t.configure_rotation_dummyDA_mirroring_and_inital_patch_size()[3] == (2,)


def _pipeline(cls):
    return cls.get_training_transforms((32, 64, 64), (-0.5, 0.5), None, (2,), False, use_mask_for_norm=[False],
                                       foreground_labels=[1, 2])


def test_tumour_aware_transform_sits_after_spatial_and_before_label_removal():
    names = [type(t).__name__ for t in _pipeline(SwinTATrainer).transforms]
    i = names.index("TumorAwareIntensityTransform")
    assert names[i - 1] == "SpatialTransform" and i < names.index(RemoveLabelTansform.__name__)
    ta = _pipeline(SwinTATrainer).transforms[i]
    assert ta.p_per_sample == 0.3 and ta.tumor_labels == (1, 2)
    assert not any(isinstance(t, TumorAwareIntensityTransform) for t in _pipeline(SwinBaseTrainer).transforms)
    # and the static call nnU-Net makes still works on the class
    assert any(isinstance(t, SpatialTransform) for t in SwinBaseTrainer.get_training_transforms(
        (32, 64, 64), (-0.5, 0.5), None, (2,), False).transforms)


def test_training_pipeline_runs_on_a_sample_and_only_changes_the_tumour_side():
    torch.manual_seed(0)
    pipeline = _pipeline(SwinTATrainer)
    i = [type(t).__name__ for t in pipeline.transforms].index("TumorAwareIntensityTransform")
    pipeline.transforms[i].p_per_sample = 1.0
    pipeline.transforms = [t for t in pipeline.transforms if isinstance(
        t, (SpatialTransform, TumorAwareIntensityTransform, RemoveLabelTansform))]
    pipeline.transforms[0].p_rotation = pipeline.transforms[0].p_scaling = 0
    image = torch.randn(1, 32, 64, 64)
    seg = torch.zeros(1, 32, 64, 64, dtype=torch.int16)
    seg[:, 10:20, 20:40, 20:40] = 1
    out = pipeline(image=image.clone(), segmentation=seg.clone())
    changed = (out["image"] != image)[0]
    assert changed.any() and not changed[seg[0] == 0].any()
    assert out["segmentation"].min() >= 0


def test_wrong_plans_and_label_sets_are_clear_errors(trainer_factory, plans_factory):
    with pytest.raises(UserError, match="nnunet-swin plan_and_preprocess"):
        trainer_factory(SwinACTTrainer, plans=plans_factory(network_class_name="dynamic_network_architectures."
                                                                               "architectures.unet.PlainConvUNet"))
    with pytest.raises(UserError, match="no foreground label"):
        trainer_factory(SwinACTTrainer, dataset_json={"channel_names": {"0": "T2"}, "labels": {"background": 0},
                                                      "numTraining": 1, "file_ending": ".nii.gz"})
    with pytest.raises(UserError, match="not in plans"):
        trainer_factory(SwinACTTrainer, configuration="2d")
    with pytest.raises(UserError, match="nnunet-swin plan_and_preprocess"):
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
        pm = PlansManager(plans_factory(network_class_name="x.Y"))
        SwinACTTrainer.build_network_architecture(pm, pm.get_configuration("3d_fullres"), 1, 2, False)


def test_geometry_mismatch_warns(trainer_factory, stand_in_network):
    with pytest.warns(UserWarning, match="SwinACTTrainer is meant for the anisotropic"):
        trainer_factory(SwinACTTrainer, configuration="3d_cubic")
    with pytest.warns(UserWarning, match="SwinBaseTrainer is meant for the cubic"):
        trainer_factory(SwinBaseTrainer, configuration="3d_fullres")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        trainer_factory(SwinBaseTrainer, configuration="3d_cubic")


class _FakeLoader:
    def __init__(self, report="3 keys matched"):
        self.calls, self.report = [], report

    def __call__(self, network, path, allow_partial=False):
        self.calls.append((network, path))
        return self.report


@pytest.fixture
def fake_loader(monkeypatch):
    from nnunet_swin.trainers import recipe
    loader = _FakeLoader()
    monkeypatch.setattr(recipe, "load_pretrained_encoder", loader)
    monkeypatch.setattr(nnUNetTrainer, "on_train_start", lambda self: None)  # no data loading in this test
    return loader


def test_pretrained_encoder_is_loaded_at_a_fresh_start_and_reported(trainer_factory, stand_in_network, fake_loader,
                                                                      nnunet_dirs, monkeypatch, capsys):
    (nnunet_dirs / "weights").mkdir()
    torch.save({"state_dict": {"w": torch.ones(2)}}, nnunet_dirs / "weights" / "smit_tiny.pth")
    monkeypatch.setenv("nnUNet_swin_pretrained", str(nnunet_dirs / "weights"))
    t = trainer_factory(SwinACTTrainer_smoke)
    t.on_train_start()
    assert len(fake_loader.calls) == 1
    net, checkpoint = fake_loader.calls[0]  # the file, read once
    assert net is t.network and torch.equal(checkpoint["state_dict"]["w"], torch.ones(2))
    out = capsys.readouterr().out
    assert "3 keys matched" in out
    assert f"loaded pretrained smit_tiny encoder from {nnunet_dirs / 'weights' / 'smit_tiny.pth'}" in out
    assert "3 keys matched" in open(os.path.join(t.output_folder, PRETRAINED_REPORT_FILE)).read()
    assert "3 keys matched" in open(t.log_file).read()


def test_resumed_training_does_not_reload_the_encoder(trainer_factory, stand_in_network, fake_loader):
    t = trainer_factory(SwinACTTrainer_smoke, continue_training=True)
    t.initialize()
    t.current_epoch = 2  # what load_checkpoint sets
    t.on_train_start()   # no checkpoint location set: must not even look
    assert fake_loader.calls == []


def test_pretrained_trainer_without_checkpoint_stops(trainer_factory, stand_in_network, fake_loader):
    t = trainer_factory(SwinACTTrainer_smoke)
    with pytest.raises(UserError, match="nnUNet_swin_pretrained is not set"):
        t.on_train_start()
    assert fake_loader.calls == []


def test_scratch_never_loads(trainer_factory, stand_in_network, fake_loader, capsys):
    t = trainer_factory(SwinScratchTrainer)
    t.on_train_start()
    assert fake_loader.calls == [] and "random initialisation" in capsys.readouterr().out


@pytest.mark.parametrize("name, epochs, iterations", [
    ("SwinBaseTrainer_5epochs", 5, 2), ("SwinTATrainer_5epochs", 5, 2), ("SwinACTTrainer_5epochs", 5, 2),
    ("SwinScratchTrainer_5epochs", 5, 2), ("SwinACTTrainer_smoke", 3, 2), ("SwinScratchTrainer_smoke", 3, 2),
    ("SwinACTTrainer_demo", 40, 25), ("SwinScratchTrainer_demo", 40, 25), ("SwinBaseTrainer_demo", 40, 25)])
def test_short_variants_only_shorten_the_schedule(trainer_factory, stand_in_network, name, epochs, iterations):
    cls = getattr(trainers, name)
    t = trainer_factory(cls, configuration="3d_cubic" if cls.intended_kind == "cubic" else "3d_fullres")
    t.set_epoch_length()  # the paper's epoch of this fold: 4 training cases at batch 2 = 2 iterations
    assert (t.num_epochs, t.num_iterations_per_epoch) == (epochs, iterations)
    assert 1 <= t.warmup_epochs < t.num_epochs


def test_epoch_length_paper_or_nnunet_and_the_step_count_is_printed(trainer_factory, stand_in_network, capsys):
    t = trainer_factory(SwinACTTrainer)
    t.set_epoch_length()
    assert (t.num_iterations_per_epoch, t.num_val_iterations_per_epoch) == (2, 1)  # 4 train / 1 val case, batch 2
    assert "500 epochs = 1000 optimiser steps, of which 100 warmup steps" in capsys.readouterr().out

    class NnunetEpochs(SwinACTTrainer):
        epoch_length = "nnunet"

    t = trainer_factory(NnunetEpochs)
    t.set_epoch_length()
    assert (t.num_iterations_per_epoch, t.num_val_iterations_per_epoch) == (250, 50)

    class Wrong(SwinACTTrainer):
        epoch_length = "long"

    with pytest.raises(UserError, match="epoch_length"):
        trainer_factory(Wrong)


def test_weight_decay_spares_norms_biases_and_position_tables():
    from nnunet_swin.networks import SwinSegmentationNetwork
    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.networks.weight_decay import adamw_param_groups as parameter_groups

    net = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny"))
    decay, no_decay = parameter_groups(net, 1e-5)
    names = {id(p): n for n, p in net.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    spared = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    assert decayed.isdisjoint(spared) and decayed | spared == set(names.values())
    assert any("relative_position_bias_table" in n for n in spared)
    assert all(not n.endswith(".bias") and "norm" not in n.split(".")[-2] for n in decayed)
    assert any(n.endswith("qkv.weight") for n in decayed) and any(n.endswith("conv1.conv.weight") or
                                                                  n.endswith(".weight") and "decoder" in n
                                                                  for n in decayed)


def test_stock_pretrained_weights_are_honoured_not_overwritten(trainer_factory, stand_in_network, fake_loader,
                                                                capsys):
    t = trainer_factory(SwinACTTrainer_smoke)
    t.initialize()
    with torch.no_grad():  # what nnUNetv2_train -pretrained_weights does between initialize() and training
        next(t.network.parameters()).add_(1.0)
    t.on_train_start()
    assert fake_loader.calls == [] and "-pretrained_weights" in capsys.readouterr().out


def test_plans_tumour_labels_and_unit_frame_reach_the_augmentation(trainer_factory, plans_factory, stand_in_network):
    plans = plans_factory()
    plans["configurations"]["3d_fullres"]["swin"].update(
        {"tumor_labels": [1], "normalization": {"mode": "rescale01", "input_range": "[0, 1]"}})
    t = trainer_factory(SwinACTTrainer, plans=plans)
    pipeline = t.get_training_transforms((32, 64, 64), (-0.5, 0.5), None, (2,), False, use_mask_for_norm=[False],
                                         foreground_labels=[1, 2])
    ta = next(x for x in pipeline.transforms if isinstance(x, TumorAwareIntensityTransform))
    assert ta.tumor_labels == (1,) and ta.reference_percentiles is None
    default = trainer_factory(SwinACTTrainer).get_training_transforms(
        (32, 64, 64), (-0.5, 0.5), None, (2,), False, use_mask_for_norm=[False], foreground_labels=[1, 2])
    ta = next(x for x in default.transforms if isinstance(x, TumorAwareIntensityTransform))
    assert ta.tumor_labels == (1, 2) and ta.reference_percentiles == (0.0, 99.0)


def test_dice_background_switch(trainer_factory, stand_in_network):
    class WithBackground(SwinACTTrainer):
        dice_include_background = True

    assert trainer_factory(SwinACTTrainer)._build_loss().dc.do_bg is False  # nnU-Net's default
    assert trainer_factory(WithBackground)._build_loss().dc.do_bg is True   # MONAI's DiceCELoss


def test_spine_trainer_weights_dice_by_lambda_and_refuses_binary_data(trainer_factory, stand_in_network):
    from nnunet_swin.trainers import SwinSpineTrainer

    spine_json = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "vertebra": 1, "disc": 2},
                  "numTraining": 4, "file_ending": ".nii.gz"}
    t = trainer_factory(SwinSpineTrainer, dataset_json=spine_json)
    assert t._build_loss().weight_dice == 1.0 and t.tumor_aware is False and t.intended_kind == "anisotropic"

    class Lambda(SwinSpineTrainer):
        dice_weight = 0.5

    assert trainer_factory(Lambda, dataset_json=spine_json)._build_loss().weight_dice == 0.5
    with pytest.raises(UserError, match="multi-class"):
        trainer_factory(SwinSpineTrainer)                              # the binary tumour dataset

    class Negative(SwinSpineTrainer):
        dice_weight = -1.0

    with pytest.raises(UserError, match="must be >= 0"):
        trainer_factory(Negative, dataset_json=spine_json)



def test_our_pretraining_metadata_is_reported_beside_the_plans(trainer_factory, stand_in_network, fake_loader,
                                                                nnunet_dirs, monkeypatch, capsys):
    from nnunet_swin.networks.weights.metadata import FORMAT

    (nnunet_dirs / "weights").mkdir()
    metadata = {"format": FORMAT, "method": "smart", "backbone": "smit_tiny", "finished": True, "epochs": 2,
                "epochs_completed": 2, "num_volumes": 3, "spacing_zyx_mm": [2.0, 2.0, 2.0],
                "intensity": {"modality": "CT", "hu_window": [-175, 250], "output_range": [0.0, 1.0]}}
    torch.save({"teacher": {"w": torch.ones(1)}, "metadata": metadata}, nnunet_dirs / "weights" / "smit_tiny.pth")
    monkeypatch.setenv("nnUNet_swin_pretrained", str(nnunet_dirs / "weights"))
    t = trainer_factory(SwinACTTrainer_smoke)
    with pytest.warns(UserWarning) as caught:
        t.on_train_start()
    messages = [str(w.message) for w in caught]
    assert any("spacing differs" in m for m in messages)                 # 2 mm pretraining, 1 mm plans
    assert any("input range differs" in m for m in messages)             # [0, 1] pretraining, z-scored plans
    report = open(os.path.join(t.output_folder, PRETRAINED_REPORT_FILE)).read()
    assert "method smart" in report and "spacing (mm):  pretraining [2.0, 2.0, 2.0]" in report
