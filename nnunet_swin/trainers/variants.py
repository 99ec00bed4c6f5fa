"""The paper's configurations as thin variants of the recipe, each changing one thing.

| trainer              | init          | tumour-aware aug | meant for configuration | epochs | seed |
|----------------------|---------------|------------------|-------------------------|--------|------|
| SwinBaseTrainer      | CT-pretrained | no               | 3d_cubic                | 500    | 0    |
| SwinTATrainer        | CT-pretrained | yes              | 3d_cubic                | 500    | 0    |
| SwinACTTrainer       | CT-pretrained | yes              | 3d_fullres (ACT crop)   | 500    | 0    |
| SwinACTNoTATrainer   | CT-pretrained | no               | 3d_fullres (ACT crop)   | 500    | 0    |
| SwinACTRepTrainer    | CT-pretrained | yes              | 3d_fullres (ACT crop)   | 500    | 1    |
| SwinScratchTrainer   | random        | yes              | 3d_fullres              | 1000   | 0    |
| SwinMaskedTrainer    | CT-pretrained | yes              | 3d_cubic, padding masked| 500    | 0    |
| SwinSpineTrainer     | pretrained    | no               | 3d_fullres, multi-class | 500    | 0    |

The seed (``seeding.py``) fixes the initial weights and the augmentation workers' streams; the model folder's name
comes from the trainer's class name, so a second seed of a recipe is a class of its own (``SwinACTRepTrainer``).
"""
from __future__ import annotations

import torch

from nnunet_swin.errors import UserError
from nnunet_swin.networks.token_kinds import NNUNET_PADDING_VALUE
from nnunet_swin.trainers.recipe import SwinBaseTrainer


class SwinTATrainer(SwinBaseTrainer):
    """-TA: Base plus tumour-aware intensity augmentation."""

    tumor_aware = True


class SwinACTTrainer(SwinTATrainer):
    """-ACT: TA on the anisotropic crop (``3d_fullres`` of our plans), for training and sliding-window inference."""

    intended_kind = "anisotropic"


class SwinACTNoTATrainer(SwinBaseTrainer):
    """ACT-noTA: the ACT crop (``3d_fullres``) without tumour-aware augmentation; against ACT it measures TA's effect at
    the ACT crop (as TA against Base does at the cubic crop)."""

    intended_kind = "anisotropic"


class SwinACTRepTrainer(SwinACTTrainer):
    """ACT-rep, the negative control: ACT exactly, with seed 1 instead of 0. Its difference from ACT is training noise
    (initialisation of what the encoder does not cover, patch sampling, augmentation), the yardstick for the
    differences between arms."""

    seed = 1


class SwinScratchTrainer(SwinACTTrainer):
    """Scratch: ACT from random initialisation, trained twice as long (1000 epochs)."""

    load_pretrained = False
    recipe_epochs = 1000


class SwinMaskedTrainer(SwinTATrainer):
    """Masked, the paper's future work: TA on the full cubic field of view (``3d_cubic``), with padding tokens
    excluded from attention instead of cropping them away.

    The padding rule needs only the input, so ``nnUNetv2_train`` and stock ``nnUNetv2_predict`` apply the same one: a
    voxel is padding when it is exactly 0 in every channel (nnU-Net pads with 0 in both), a token when all its voxels
    are (``networks.token_kinds.real_voxels_by_value``). ``build_network_architecture`` (which predict calls too) turns
    the exclusion on; in training the intensity augmentations are kept from moving padded voxels off 0
    (``augmentation/input_padding.py``). Every block then masks input padding and Swin's window padding out of the
    softmax, so no real query attends to a padding token: the ADI is 0 by construction. With ``-normalization
    rescale01`` the image minimum is 0 too, so tokens wholly at the minimum (air) are treated as padding as well.
    """

    input_padding_value = NNUNET_PADDING_VALUE

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True):
        net = SwinBaseTrainer.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                         num_output_channels, enable_deep_supervision)
        return net.exclude_input_padding(NNUNET_PADDING_VALUE)


class SwinSpineTrainer(SwinBaseTrainer):
    """The spine paper's training: CE + lambda * Dice for multi-class plans (lambda = ``dice_weight``, 1 by default,
    the equal weighting; subclass to change it), on the anisotropic crop, no tumour-aware augmentation."""

    intended_kind = "anisotropic"

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        labels = [v for k, v in dataset_json.get("labels", {}).items() if k not in ("background", "ignore")]
        if len(labels) < 2:
            raise UserError(f"{type(self).__name__} is for multi-class datasets; {len(labels)} foreground label(s) "
                            f"found in dataset.json; use SwinACTTrainer for a binary task")
        super().__init__(plans, configuration, fold, dataset_json, device)
