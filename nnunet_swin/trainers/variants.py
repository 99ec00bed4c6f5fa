"""The paper's configurations as thin variants of the recipe, each changing one thing.

| trainer              | init          | tumour-aware aug | meant for configuration | epochs |
|----------------------|---------------|------------------|-------------------------|--------|
| SwinBaseTrainer      | CT-pretrained | no               | 3d_cubic                | 500    |
| SwinTATrainer        | CT-pretrained | yes              | 3d_cubic                | 500    |
| SwinACTTrainer       | CT-pretrained | yes              | 3d_fullres (ACT crop)   | 500    |
| SwinScratchTrainer   | random        | yes              | 3d_fullres              | 1000   |
"""
from __future__ import annotations

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
