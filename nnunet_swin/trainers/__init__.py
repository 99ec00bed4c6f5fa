"""nnU-Net trainers for fine-tuning 3D Swin backbones: the recipe (``SwinBaseTrainer``) and its variants.

nnU-Net finds these through ``nnUNet_extTrainer`` and a shim module doing ``from nnunet_swin.trainers import *``;
``__all__`` therefore lists exactly the trainer classes.
"""
from nnunet_swin.trainers.cnn_baseline import nnUNetTrainer_demo, nnUNetTrainer_recipe, nnUNetTrainer_smoke
from nnunet_swin.trainers.recipe import SwinBaseTrainer
from nnunet_swin.trainers.short_variants import (SwinACTNoTATrainer_5epochs, SwinACTNoTATrainer_demo,
                                                 SwinACTNoTATrainer_smoke, SwinACTRepTrainer_5epochs,
                                                 SwinACTRepTrainer_demo, SwinACTRepTrainer_smoke,
                                                 SwinACTTrainer_5epochs, SwinACTTrainer_demo, SwinACTTrainer_quick, SwinACTTrainer_smoke,
                                                 SwinBaseTrainer_5epochs, SwinBaseTrainer_demo, SwinBaseTrainer_smoke,
                                                 SwinMaskedTrainer_5epochs, SwinMaskedTrainer_demo,
                                                 SwinMaskedTrainer_smoke,
                                                 SwinScratchTrainer_5epochs, SwinScratchTrainer_demo, SwinScratchTrainer_quick,
                                                 SwinScratchTrainer_smoke, SwinSpineTrainer_smoke,
                                                 SwinTATrainer_5epochs, SwinTATrainer_demo, SwinTATrainer_smoke)
from nnunet_swin.trainers.variants import (SwinACTNoTATrainer, SwinACTRepTrainer, SwinACTTrainer, SwinMaskedTrainer,
                                          SwinScratchTrainer, SwinSpineTrainer, SwinTATrainer)

__all__ = [
    "SwinBaseTrainer", "SwinTATrainer", "SwinACTTrainer", "SwinScratchTrainer", "SwinSpineTrainer",
    "SwinBaseTrainer_5epochs", "SwinTATrainer_5epochs", "SwinACTTrainer_5epochs", "SwinScratchTrainer_5epochs",
    "SwinACTTrainer_smoke", "SwinScratchTrainer_smoke", "SwinACTTrainer_demo", "SwinSpineTrainer_smoke",
    "SwinBaseTrainer_smoke", "SwinTATrainer_smoke", "SwinBaseTrainer_demo", "SwinTATrainer_demo",
    "SwinScratchTrainer_demo", "SwinMaskedTrainer", "SwinMaskedTrainer_5epochs", "SwinMaskedTrainer_smoke",
    "SwinMaskedTrainer_demo", "SwinACTTrainer_quick", "SwinScratchTrainer_quick",
    "SwinACTNoTATrainer", "SwinACTNoTATrainer_5epochs", "SwinACTNoTATrainer_smoke", "SwinACTNoTATrainer_demo",
    "SwinACTRepTrainer", "SwinACTRepTrainer_5epochs", "SwinACTRepTrainer_smoke", "SwinACTRepTrainer_demo",
    "nnUNetTrainer_smoke", "nnUNetTrainer_demo", "nnUNetTrainer_recipe",
]
