"""The study's CNN baseline: stock ``nnUNetTrainer`` (SGD, poly schedule, deep supervision, nnU-Net's augmentation,
on plans of a stock planner such as ``nnUNetPlannerResEncM``) changed in one thing only, its length, so that it gets
the optimiser steps of the Swin arms it is compared with. nnU-Net ships ``nnUNetTrainer_5epochs`` etc. itself; these
names are ours and do not clash with its own.

| trainer               | epochs x iterations (validation)                      | seed |
|-----------------------|-------------------------------------------------------|------|
| nnUNetTrainer_smoke   | the Swin ``_smoke`` schedule (``short_variants._Smoke``) | 0    |
| nnUNetTrainer_demo    | the Swin ``_demo`` schedule (``short_variants._Demo``)   | 0    |
| nnUNetTrainer_recipe  | the recipe's 500 epochs of one pass over the training cases (the paper preset) | 0 |

The schedules are read from the Swin short variants' classes, so the two stay equal when one changes. The seed is
set as for the Swin arms (``seeding.py``).
"""
from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_swin.trainers.recipe import SwinBaseTrainer
from nnunet_swin.trainers.seeding import Seeded
from nnunet_swin.trainers.short_variants import _Demo, _NoSelfValidation, _Short, _Smoke


class _StockLength(_Short, Seeded):
    """Stock ``nnUNetTrainer`` at the length of ``schedule`` (a Swin short-variant class), seed 0."""

    schedule: type = _Smoke
    seed = 0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.schedule.recipe_epochs
        self.num_iterations_per_epoch = self.schedule.recipe_iterations_per_epoch
        self.num_val_iterations_per_epoch = self.schedule.recipe_val_iterations_per_epoch


class nnUNetTrainer_smoke(_StockLength, nnUNetTrainer):
    """Stock nnU-Net in seconds, at the Swin arms' ``_smoke`` steps (tests, the smoke preset)."""

    schedule = _Smoke


class nnUNetTrainer_demo(_NoSelfValidation, _StockLength, nnUNetTrainer):
    """Stock nnU-Net at the Swin arms' ``_demo`` steps (the demo preset), its final validation skipped on a fold that
    validates on its own training cases, as the Swin ``_demo`` arms'."""

    schedule = _Demo


class nnUNetTrainer_recipe(_Short, Seeded, nnUNetTrainer):
    """Stock nnU-Net at the recipe's length (the paper preset): ``SwinBaseTrainer.recipe_epochs`` epochs, each one
    pass over the fold's training cases (ceil(cases / batch) iterations), as the Swin arms' "paper" epoch."""

    seed = 0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = SwinBaseTrainer.recipe_epochs

    def on_train_start(self):
        super().on_train_start()
        train_cases, val_cases = self.do_split()
        batch = self.configuration_manager.batch_size
        self.num_iterations_per_epoch = max(1, -(-len(train_cases) // batch))
        self.num_val_iterations_per_epoch = max(1, -(-len(val_cases) // batch))
        self.print_to_log_file(f"epoch = {self.num_iterations_per_epoch} training iterations (one pass over "
                               f"{len(train_cases)} cases, batch {batch}); {self.num_epochs} epochs",
                               also_print_to_console=True)
