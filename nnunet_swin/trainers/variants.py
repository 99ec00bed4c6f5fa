"""The paper's configurations as thin variants of the recipe, each changing one thing.

| trainer              | init          | tumour-aware aug | meant for configuration | epochs |
|----------------------|---------------|------------------|-------------------------|--------|
| SwinBaseTrainer      | CT-pretrained | no               | 3d_cubic                | 500    |
| SwinTATrainer        | CT-pretrained | yes              | 3d_cubic                | 500    |
| SwinACTTrainer       | CT-pretrained | yes              | 3d_fullres (ACT crop)   | 500    |
| SwinScratchTrainer   | random        | yes              | 3d_fullres              | 1000   |
| SwinSpineTrainer     | pretrained    | no               | 3d_fullres, multi-class | 500    |
"""
from __future__ import annotations

import torch

from nnunet_swin.errors import UserError
from nnunet_swin.trainers.recipe import SwinBaseTrainer


class SwinTATrainer(SwinBaseTrainer):
    """-TA: Base plus tumour-aware intensity augmentation."""

    tumor_aware = True


class SwinACTTrainer(SwinTATrainer):
    """-ACT: TA on the anisotropic crop (``3d_fullres`` of our plans), for training and sliding-window inference."""

    intended_kind = "anisotropic"


class SwinScratchTrainer(SwinACTTrainer):
    """Scratch: ACT from random initialisation, trained twice as long (1000 epochs)."""

    load_pretrained = False
    recipe_epochs = 1000


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
