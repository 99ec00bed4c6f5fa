"""Short runs for checks, tests and the CPU demo, the way nnU-Net ships ``nnUNetTrainer_5epochs``.

Warmup is shortened with the run (a 50-epoch warmup would never end). ``_smoke`` is for automated tests (seconds
per epoch on CPU with a tiny backbone); ``_demo`` is what ``nnunet-swin demo`` trains (minutes on 2 CPU cores).
"""
from __future__ import annotations

import torch

from nnunet_swin.trainers.recipe import SwinBaseTrainer
from nnunet_swin.trainers.variants import SwinACTTrainer, SwinScratchTrainer, SwinTATrainer


class SwinBaseTrainer_5epochs(SwinBaseTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 5, 1


class SwinTATrainer_5epochs(SwinTATrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 5, 1


class SwinACTTrainer_5epochs(SwinACTTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 5, 1


class SwinScratchTrainer_5epochs(SwinScratchTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 5, 1


class SwinACTTrainer_smoke(SwinACTTrainer):
    """3 epochs x 2 iterations, 1 validation iteration: exercises the whole loop in seconds (tests)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 3, 1
        self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 2, 1


class SwinScratchTrainer_smoke(SwinScratchTrainer):
    """As ``SwinACTTrainer_smoke`` from random initialisation (no checkpoint needed)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 3, 1
        self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 2, 1


class SwinACTTrainer_demo(SwinACTTrainer):
    """The CPU demo's run: 30 epochs x 25 iterations, 3 warmup epochs (about 9 minutes on 2 idle cores)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.warmup_epochs = 30, 3
        self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 25, 5
