"""The study's added arms as trainers: ACT-noTA (no tumour-aware augmentation at the ACT crop), ACT-rep (ACT with
another seed), the stock nnU-Net CNN at the Swin arms' steps; and the explicit seed (initial weights, augmentation
workers)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from batchgenerators.dataloading.data_loader import DataLoader
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter

from nnunet_swin import trainers
from nnunet_swin.trainers.cnn_baseline import nnUNetTrainer_demo, nnUNetTrainer_smoke
from nnunet_swin.trainers.seeding import seeded_augmenters, worker_seeds
from nnunet_swin.trainers.short_variants import _Demo, _Smoke


def test_the_new_arms_change_one_thing_each():
    t = trainers
    assert not t.SwinACTNoTATrainer.tumor_aware and t.SwinACTTrainer.tumor_aware
    assert t.SwinACTNoTATrainer.intended_kind == t.SwinACTTrainer.intended_kind == "anisotropic"
    assert t.SwinACTNoTATrainer.load_pretrained and t.SwinACTRepTrainer.load_pretrained
    assert (t.SwinACTTrainer.seed, t.SwinACTRepTrainer.seed) == (0, 1)
    assert issubclass(t.SwinACTRepTrainer, t.SwinACTTrainer)
    for recipe in ("SwinACTNoTATrainer", "SwinACTRepTrainer"):
        for suffix in ("_smoke", "_demo", "_5epochs"):
            short = getattr(t, recipe + suffix)
            assert recipe + suffix in t.__all__ and issubclass(short, getattr(t, recipe))
            assert short.seed == getattr(t, recipe).seed
    for name in ("nnUNetTrainer_smoke", "nnUNetTrainer_demo", "nnUNetTrainer_recipe"):
        assert name in t.__all__


@pytest.mark.parametrize("cls, schedule", [(nnUNetTrainer_smoke, _Smoke), (nnUNetTrainer_demo, _Demo)])
def test_the_cnn_gets_the_swin_arms_steps(trainer_factory, plans_factory, cls, schedule):
    t = trainer_factory(cls, plans=_resenc_plans(plans_factory))
    swin = trainer_factory(getattr(trainers, "SwinACTTrainer" + ("_smoke" if schedule is _Smoke else "_demo")))
    swin.set_epoch_length()
    assert (t.num_epochs, t.num_iterations_per_epoch, t.num_val_iterations_per_epoch) == \
        (swin.num_epochs, swin.num_iterations_per_epoch, swin.num_val_iterations_per_epoch)
    assert t.num_epochs * t.num_iterations_per_epoch == schedule.recipe_epochs * schedule.recipe_iterations_per_epoch
    assert type(t).__mro__[-2].__name__ == "nnUNetTrainer"     # stock nnU-Net underneath (SGD, poly, DS)
    assert t.enable_deep_supervision


def _initial_weights(trainer_factory, cls) -> dict:
    torch.manual_seed(1234)                   # whatever the process did before: the trainer's seed decides
    np.random.seed(1234)
    t = trainer_factory(cls)
    t.initialize()
    return {k: v.clone() for k, v in t.plain_network().state_dict().items()}


def test_a_seed_fixes_the_initial_weights_and_another_seed_changes_them(trainer_factory):
    rep_a = _initial_weights(trainer_factory, trainers.SwinACTRepTrainer_smoke)
    rep_b = _initial_weights(trainer_factory, trainers.SwinACTRepTrainer_smoke)
    act = _initial_weights(trainer_factory, trainers.SwinACTTrainer_smoke)
    assert rep_a.keys() == act.keys()
    assert all(torch.equal(rep_a[k], rep_b[k]) for k in rep_a)
    floats = [k for k, v in rep_a.items() if v.is_floating_point() and v.numel() > 1 and v.std() > 0]
    assert floats and all(not torch.equal(rep_a[k], act[k]) for k in floats)


def _resenc_plans(plans_factory) -> dict:
    """Plans whose 3d_fullres is a small stock ResidualEncoderUNet, as nnU-Net's ResEnc planners write it."""
    plans = plans_factory()
    plans["configurations"]["3d_fullres"]["architecture"] = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
        "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv3d",
                        "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
                        "n_blocks_per_stage": [1, 1, 1], "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
                        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                        "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                        "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                        "nonlin_kwargs": {"inplace": True}},
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}
    return plans


def test_the_stock_cnn_is_seeded_too(trainer_factory, plans_factory):
    def weights():
        torch.manual_seed(1234)
        t = trainer_factory(nnUNetTrainer_smoke, plans=_resenc_plans(plans_factory))
        t.initialize()
        return t.network.state_dict()

    a, b = weights(), weights()
    assert all(torch.equal(a[k], b[k]) for k in a)


class _Draws(DataLoader):
    """An infinite loader whose batches are what a worker draws from numpy and torch (as patch sampling and
    batchgeneratorsv2's transforms do)."""

    def __init__(self):
        super().__init__(list(range(8)), 1, num_threads_in_multithreaded=1, infinite=True)

    def generate_train_batch(self):
        return {"np": np.random.uniform(size=4), "torch": torch.rand(4)}


def _first_batches(seed: int, n: int = 3) -> list[np.ndarray]:
    """The first batches of an augmenter built by name inside nnU-Net's trainer module, as ``get_dataloaders`` does,
    while :func:`seeded_augmenters` is active."""
    import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as stock

    with seeded_augmenters(seed):
        aug = stock.NonDetMultiThreadedAugmenter(data_loader=_Draws(), transform=None, num_processes=1, num_cached=2,
                                                 seeds=None, pin_memory=False, wait_time=0.002)
    assert stock.NonDetMultiThreadedAugmenter is NonDetMultiThreadedAugmenter      # put back
    try:
        return [np.concatenate([b["np"], b["torch"].numpy()]) for b in (next(aug) for _ in range(n))]
    finally:
        aug._finish()


def test_the_augmentation_workers_are_seeded():
    first, again, other = _first_batches(0), _first_batches(0), _first_batches(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    assert worker_seeds(0, 2) != worker_seeds(1, 2) and len(set(worker_seeds(3, 4))) == 4
