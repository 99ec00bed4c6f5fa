"""The fine-tuning recipe (paper section 2.5.1) as an nnU-Net trainer; the Base/TA/ACT/Scratch variants subclass it.

- Loss: nnU-Net's equally weighted soft Dice + cross-entropy, no deep supervision (the Swin network has none).
- Optimiser: AdamW, lr 3e-4, weight decay 1e-5 (not on norms, biases, relative-position tables: the
  network's ``no_weight_decay()``, ``nnunet_swin.networks.weight_decay``); 50 warmup epochs then cosine annealing, closed form in the epoch (``schedule.py``), so
  ``--c`` resumes on the same curve. 500 epochs of the paper's length (one pass over the fold's training cases;
  ``epoch_length = "nnunet"`` keeps nnU-Net's 250 iterations). Batch size from the plans.
- ``nnUNetv2_train -pretrained_weights`` is honoured: when the network's weights changed between ``initialize()``
  and the start of training, the ``nnUNet_swin_pretrained`` encoder load is skipped, and the log says so.
- Kept from nnU-Net: AMP on CUDA, gradient clipping, validation, checkpoints (best by the EMA pseudo-Dice unless
  ``nnUNet_swin_val_every=K`` asks for the paper's full-volume rule, ``validation.py``), logging, DDP
  (``-num_gpus``), sliding-window inference with 50% overlap.
- Flips (training augmentation and test-time mirroring) only along the left-right axis (``mirroring.py``).
- CT-pretrained encoder: loaded when a training starts at epoch 0 (not when resuming with ``--c`` nor for
  ``--val``), from ``$nnUNet_swin_pretrained`` (``nnunet_swin.networks.weights.location``) through the backbone's checkpoint adapter. No
  checkpoint, or one that does not fit, stops the run with the reason; it never falls back to random init.

Switches the variants flip (class attributes, read by the static/class-level hooks nnU-Net calls):
``load_pretrained``, ``tumor_aware`` (tumour-aware augmentation), ``tumor_labels`` (None = all foreground labels),
``seed`` (``seeding.py``),
``intended_kind`` (``cubic`` for 3d_cubic, ``anisotropic`` for the ACT 3d_fullres; a mismatch warns) and the
schedule ``recipe_epochs``, ``recipe_warmup_epochs``, ``recipe_iterations_per_epoch``,
``recipe_val_iterations_per_epoch`` (None keeps nnU-Net's 250 / 50).
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import List, Tuple, Union

import numpy as np
import torch
from batchgeneratorsv2.helpers.scalar_type import RandomScalar
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn
from torch._dynamo import OptimizedModule
from torch.nn.parallel import DistributedDataParallel as DDP

from nnunet_swin.augmentation.input_padding import wrap_intensity_block
from nnunet_swin.augmentation.tumor_aware import TumorAwareIntensityTransform
from nnunet_swin.errors import UserError
from nnunet_swin.io import write_text
from nnunet_swin.networks.weight_decay import adamw_param_groups
from nnunet_swin.networks.weights import load_pretrained_encoder, read_checkpoint, resolve_pretrained_checkpoint
from nnunet_swin.networks.weights.metadata import (compare_with_plans, encoder_summary, read_pretraining_metadata,
                                                   report_lines)
from nnunet_swin.trainers.compatibility import geometry_mismatch, require_foreground, require_swin_network
from nnunet_swin.trainers.mirroring import left_right_axis
from nnunet_swin.trainers.progress import progress_line
from nnunet_swin.trainers.schedule import WarmupCosineLRScheduler
from nnunet_swin.trainers.seeding import Seeded
from nnunet_swin.trainers.validation import LOG_KEY, full_volume_dice, validation_every

PRETRAINED_REPORT_FILE = "pretrained_encoder_report.txt"


def weights_signature(network: nn.Module) -> tuple[float, ...]:
    """A cheap fingerprint of a network's parameters (one float64 sum per tensor): tells whether weights changed."""
    with torch.no_grad():
        return tuple(float(p.detach().double().sum()) for p in network.parameters())


def insert_tumor_aware_transform(pipeline: ComposeTransforms, transform: BasicTransform) -> ComposeTransforms:
    """Put ``transform`` right after the spatial block of nnU-Net's training pipeline (in place; returns it).

    The spatial block ends with ``SpatialTransform`` (or ``Convert2DTo3DTransform`` after pseudo-2D augmentation);
    that is before ``RemoveLabelTansform``, so padding is still -1. Raises ``RuntimeError`` if the pipeline does not
    have that shape (a changed nnU-Net).
    """
    items = pipeline.transforms
    spatial = [i for i, t in enumerate(items) if isinstance(t, SpatialTransform)]
    remove = [i for i, t in enumerate(items) if isinstance(t, RemoveLabelTansform)]
    if not spatial or not remove or spatial[0] > remove[0]:
        raise RuntimeError("nnU-Net's training pipeline has no SpatialTransform before RemoveLabelTansform; cannot "
                           "place the tumour-aware augmentation")
    at = spatial[0] + 1
    if at < len(items) and isinstance(items[at], Convert2DTo3DTransform):
        at += 1
    items.insert(at, transform)
    return pipeline


class SwinBaseTrainer(Seeded, nnUNetTrainer):
    """Paper's -Base: CT-pretrained encoder, cubic crop (``3d_cubic``), no tumour-aware augmentation, 500 epochs."""

    # random, numpy, torch and the augmentation workers (``seeding.py``: what is and is not deterministic); every arm
    # runs seed 0 except the negative control ACT-rep (seed 1)
    seed: int | None = 0
    load_pretrained: bool = True
    tumor_aware: bool = False
    tumor_labels: tuple[int, ...] | None = None
    intended_kind: str = "cubic"
    # the schedule, read once by __init__ (nnU-Net's own attributes num_epochs etc. are set from them)
    recipe_epochs: int = 500
    recipe_warmup_epochs: int = 50
    # "paper": an epoch is one pass over the fold's training cases (ceil(cases / batch) iterations; validation one
    # pass over its cases); "nnunet": nnU-Net's 250 training / 50 validation iterations. Explicit counts win.
    epoch_length: str = "paper"
    recipe_iterations_per_epoch: int | None = None
    recipe_val_iterations_per_epoch: int | None = None
    # K > 0: checkpoint_best.pth by the best mean Dice on full validation volumes every K epochs (the paper's rule,
    # validation.py); 0: nnU-Net's EMA pseudo-Dice on patches. $nnUNet_swin_val_every overrides it.
    full_volume_validation_every: int = 0
    # nnU-Net's Dice term leaves the background out; MONAI's DiceCELoss (the paper's library) includes it
    dice_include_background: bool = False
    # loss = CE + dice_weight * Dice (the paper's equal weighting: 1; the spine paper's lambda)
    dice_weight: float = 1.0
    # warmup starts at lr/warmup in the first epoch (ours); True: at 0 (MONAI's WarmupCosineSchedule)
    recipe_warmup_from_zero: bool = False
    # None, or the padding value the Masked arm excludes from attention: the training pipeline then keeps padded
    # voxels at exactly that value through the intensity augmentations (augmentation/input_padding.py)
    input_padding_value: float | None = None

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        # fail before nnU-Net creates output folders and logs
        plans_manager = PlansManager(plans)
        if configuration not in plans_manager.available_configurations:
            raise UserError(f"configuration {configuration!r} is not in plans {plans_manager.plans_name!r}; "
                            f"available: {', '.join(plans_manager.available_configurations)}")
        require_swin_network(plans_manager.get_configuration(configuration).network_arch_class_name,
                             plans_manager.plans_name, configuration)
        foreground = plans_manager.get_label_manager(dataset_json).foreground_labels
        require_foreground(foreground, plans_manager.dataset_name)
        if self.tumor_labels is not None and not set(self.tumor_labels) <= set(foreground):
            raise UserError(f"{type(self).__name__}.tumor_labels {list(self.tumor_labels)} are not all foreground "
                            f"labels of dataset {plans_manager.dataset_name!r} ({list(foreground)})")

        if not self.dice_weight >= 0:
            raise UserError(f"{type(self).__name__}.dice_weight (lambda of CE + lambda * Dice) must be >= 0, got "
                            f"{self.dice_weight}")

        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = 3e-4
        self.weight_decay = 1e-5
        if self.epoch_length not in ("paper", "nnunet"):
            raise UserError(f"{type(self).__name__}.epoch_length must be 'paper' or 'nnunet', got "
                            f"{self.epoch_length!r}")
        self.num_epochs = self.recipe_epochs
        self.warmup_epochs = self.recipe_warmup_epochs
        self.enable_deep_supervision = False

        swin = self.configuration_manager.configuration.get("swin", {})
        self.plans_tumor_labels = swin.get("tumor_labels")
        self.unit_frame = swin.get("normalization", {}).get("input_range") == "[0, 1]"
        # nnU-Net calls self.get_training_transforms(...) with its own arguments: bind the plans' choices
        self.get_training_transforms = functools.partial(type(self).get_training_transforms,
                                                         tumor_labels=self.plans_tumor_labels,
                                                         unit_frame=self.unit_frame)

        mismatch = geometry_mismatch(self.configuration_manager.configuration, self.intended_kind,
                                     type(self).__name__, configuration)
        if mismatch is not None:
            self.print_to_log_file(mismatch, also_print_to_console=True)
            warnings.warn(mismatch, stacklevel=2)

    # ----------------------------------------------------------------------------------------------- network
    @staticmethod
    def build_network_architecture(plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        """Our Swin network from the plans (also used by ``nnUNetv2_predict``); never loads pretrained weights."""
        require_swin_network(configuration_manager.network_arch_class_name, plans_manager.plans_name,
                             "(the one being built)")
        return get_network_from_plans(
            configuration_manager.network_arch_class_name,
            configuration_manager.network_arch_init_kwargs,
            configuration_manager.network_arch_init_kwargs_req_import,
            num_input_channels,
            num_output_channels,
            allow_init=True,
            deep_supervision=False)

    def set_deep_supervision_enabled(self, enabled: bool):
        """No deep supervision: the Swin network has a single output."""

    def plain_network(self) -> nn.Module:
        """``self.network`` without the DDP / torch.compile wrappers."""
        net = self.network.module if isinstance(self.network, DDP) else self.network
        return net._orig_mod if isinstance(net, OptimizedModule) else net

    # ---------------------------------------------------------------------------------------- optimisation
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(adamw_param_groups(self.network, self.weight_decay), lr=self.initial_lr,
                                      weight_decay=self.weight_decay)
        lr_scheduler = WarmupCosineLRScheduler(optimizer, self.warmup_epochs, self.num_epochs,
                                               from_zero=self.recipe_warmup_from_zero)
        self.print_to_log_file(f"AdamW lr {self.initial_lr} weight decay {self.weight_decay} (not on norms, biases "
                               f"and relative-position tables); linear warmup {self.warmup_epochs} epochs then "
                               f"cosine annealing to epoch {self.num_epochs}")
        return optimizer, lr_scheduler

    def _build_loss(self):
        """nnU-Net's CE + ``dice_weight`` * Dice; ``dice_include_background`` puts the background class into the
        Dice term as MONAI's DiceCELoss does (region-based plans already include every region)."""
        loss = super()._build_loss()
        loss.weight_dice = float(self.dice_weight)
        if self.dice_include_background and not self.label_manager.has_regions:
            dice_term = loss.dc._orig_mod if isinstance(loss.dc, OptimizedModule) else loss.dc
            dice_term.do_bg = True
        return loss

    def set_epoch_length(self) -> None:
        """Iterations per epoch from ``epoch_length`` (needs the fold's split), then print the optimiser steps."""
        train_cases, val_cases = self.do_split()
        batch = self.configuration_manager.batch_size  # the global batch (nnU-Net splits it over DDP ranks)
        if self.epoch_length == "paper":
            self.num_iterations_per_epoch = max(1, -(-len(train_cases) // batch))
            self.num_val_iterations_per_epoch = max(1, -(-len(val_cases) // batch))
        if self.recipe_iterations_per_epoch is not None:
            self.num_iterations_per_epoch = self.recipe_iterations_per_epoch
        if self.recipe_val_iterations_per_epoch is not None:
            self.num_val_iterations_per_epoch = self.recipe_val_iterations_per_epoch
        steps = self.num_epochs * self.num_iterations_per_epoch
        self.print_to_log_file(
            f"epoch = {self.num_iterations_per_epoch} training iterations ({self.epoch_length} epoch: "
            f"{len(train_cases)} training cases, batch {batch}); {self.num_epochs} epochs = {steps} "
            f"optimiser steps, of which {self.warmup_epochs * self.num_iterations_per_epoch} warmup steps",
            also_print_to_console=True)

    # ---------------------------------------------------------------------------------------- augmentation
    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        mirror_axes = (left_right_axis(self.plans_manager.transpose_forward),)
        self.inference_allowed_mirroring_axes = mirror_axes
        self.print_to_log_file(f"flips (training and test-time) restricted to the left-right axis: {mirror_axes}")
        return rotation, dummy_2d, initial_patch_size, mirror_axes

    @classmethod
    def get_training_transforms(
            cls,
            patch_size: Union[np.ndarray, Tuple[int]],
            rotation_for_DA: RandomScalar,
            deep_supervision_scales: Union[List, Tuple, None],
            mirror_axes: Tuple[int, ...],
            do_dummy_2d_data_aug: bool,
            use_mask_for_norm: List[bool] = None,
            is_cascaded: bool = False,
            foreground_labels: Union[Tuple[int, ...], List[int]] = None,
            regions: List[Union[List[int], Tuple[int, ...], int]] = None,
            ignore_label: int = None,
            tumor_labels=None,
            unit_frame: bool = False,
    ) -> BasicTransform:
        """nnU-Net's pipeline, plus the tumour-aware transform after the spatial block when ``cls.tumor_aware``.

        Tumour labels: ``cls.tumor_labels``, else ``tumor_labels`` (the plans' ``-tumor_labels``), else every
        foreground label. ``unit_frame``: images are already in [0, 1] (plans normalised with rescale01), so eq. 1
        applies verbatim. An instance passes both from its plans (see ``__init__``)."""
        pipeline = nnUNetTrainer.get_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
            use_mask_for_norm=use_mask_for_norm, is_cascaded=is_cascaded, foreground_labels=foreground_labels,
            regions=regions, ignore_label=ignore_label)
        if cls.tumor_aware:
            labels = next(lab for lab in (cls.tumor_labels, tumor_labels, foreground_labels) if lab is not None)
            insert_tumor_aware_transform(pipeline, TumorAwareIntensityTransform(
                tumor_labels=labels, reference_percentiles=None if unit_frame else (0.0, 99.0)))
        if cls.input_padding_value is not None:
            wrap_intensity_block(pipeline, cls.input_padding_value)
        return pipeline

    # ---------------------------------------------------------------------------------------- pretrained init
    def initialize(self):
        super().initialize()
        self._initial_signature = weights_signature(self.plain_network())

    def on_train_start(self):
        if not self.was_initialized:
            self.initialize()
        if self.current_epoch == 0:  # a training that starts now (not --c from a checkpoint)
            if weights_signature(self.plain_network()) != self._initial_signature:
                # nnUNetv2_train -pretrained_weights loaded weights after initialize(): honour them
                self.print_to_log_file(f"{type(self).__name__}: the network already holds weights loaded with "
                                       f"nnUNetv2_train -pretrained_weights; the nnUNet_swin_pretrained encoder load is "
                                       f"skipped", also_print_to_console=True)
            elif self.load_pretrained:
                self.load_pretrained_encoder()
            else:
                self.print_to_log_file(f"{type(self).__name__}: random initialisation (no pretrained encoder)")
        super().on_train_start()
        self.set_epoch_length()
        self.report_progress("start", epoch=self.current_epoch, num_epochs=self.num_epochs)

    def on_epoch_end(self):
        epoch = self.current_epoch
        every = validation_every(self.full_volume_validation_every)
        if every:
            self._best_ema = float("inf")  # nnU-Net's EMA rule never saves checkpoint_best.pth; ours does
            if (epoch + 1) % every == 0 or epoch == self.num_epochs - 1:
                self.validate_full_volumes(epoch)  # before nnU-Net's epoch end moves current_epoch on
        super().on_epoch_end()
        value = self.logger.get_value
        self.report_progress("epoch", epoch=epoch, num_epochs=self.num_epochs,
                             train_loss=float(value("train_losses", step=-1)),
                             val_loss=float(value("val_losses", step=-1)),
                             pseudo_dice=float(value("mean_fg_dice", step=-1)),
                             ema_pseudo_dice=float(value("ema_fg_dice", step=-1)))

    def validate_full_volumes(self, epoch: int) -> float:
        """Mean Dice on the fold's full validation volumes; saves ``checkpoint_best.pth`` on a new best."""
        history = self.logger.local_logger.my_fantastic_logging.setdefault(LOG_KEY, [])  # saved in checkpoints
        value = full_volume_dice(self)
        best = max((v for _, v in history if v == v), default=float("-inf"))
        history.append([int(epoch), value])
        self.print_to_log_file(f"full-volume validation Dice {value:.4f} (best so far {max(best, value):.4f})")
        if value == value and value > best:
            self.print_to_log_file(f"new best full-volume validation Dice: {value:.4f}; saving checkpoint_best.pth")
            self.save_checkpoint(os.path.join(self.output_folder, "checkpoint_best.pth"))
        return value

    def report_progress(self, event: str, **fields) -> None:
        """One machine-readable progress line on stdout (rank 0), see ``progress.py``."""
        if self.local_rank == 0:
            print(progress_line(event, **fields), flush=True)

    def load_pretrained_encoder(self):
        """Load the pretrained encoder named by ``$nnUNet_swin_pretrained``; print, log and save the report, which says
        what the encoder is (for our own pretraining: method, steps, corpus, which encoder and whether it collapsed)."""
        backbone = self.configuration_manager.network_arch_init_kwargs.get("backbone")
        if not backbone:
            raise UserError(f"plans {self.plans_manager.plans_name!r} name no backbone in arch_kwargs; re-plan with "
                            f"`nnunet-swin plan_and_preprocess`")
        path = resolve_pretrained_checkpoint(backbone)
        checkpoint = read_checkpoint(path)  # read once, for the weights and for what the file says about itself
        report = load_pretrained_encoder(self.plain_network(), checkpoint)
        metadata = read_pretraining_metadata(checkpoint)
        # what the encoder is, from what the file says about itself: never "CT-pretrained" for our own short runs
        what = encoder_summary(metadata) if metadata is not None else f"pretrained {backbone} encoder"
        text = f"loaded {what} from {path}\n{report}"
        if metadata is not None:  # our own pretraining: its spacing and intensity beside the plans'
            cm = self.configuration_manager
            text += "\n" + "\n".join(report_lines(metadata, cm.spacing, cm.normalization_schemes))
            for warning in compare_with_plans(metadata, cm.spacing, cm.normalization_schemes):
                warnings.warn(f"pretrained encoder: {warning}", stacklevel=2)
        self.print_to_log_file(text, also_print_to_console=True)
        self.logger.update_config({"pretrained_encoder": {"backbone": backbone, "path": str(path)}})
        if self.local_rank == 0:
            write_text(os.path.join(self.output_folder, PRETRAINED_REPORT_FILE), text + "\n")
        self.report_progress("encoder", text=text)
        return report
