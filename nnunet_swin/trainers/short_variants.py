"""Short runs for checks, tests and the CPU demo, the way nnU-Net ships ``nnUNetTrainer_5epochs``.

Warmup is shortened with the run (a 50-epoch warmup would never end). ``_smoke`` is for automated tests (seconds
per epoch on CPU with a tiny backbone); ``_demo`` is what the powered demo study trains and ``_quick`` what ``nnunet-swin demo`` trains (minutes on 2 CPU
cores).
"""
from __future__ import annotations

from nnunet_swin.trainers.recipe import SwinBaseTrainer
from nnunet_swin.trainers.variants import (SwinACTNoTATrainer, SwinACTRepTrainer, SwinACTTrainer, SwinMaskedTrainer,
                                          SwinScratchTrainer, SwinSpineTrainer, SwinTATrainer)


class _Short:
    """``checkpoint_latest.pth`` every tenth of the run, as the full schedule writes it every 50 of 500 epochs
    (nnU-Net's ``save_every``): an interrupted short run resumes with ``--c`` like a full one."""

    def on_train_start(self):
        super().on_train_start()
        self.save_every = max(1, self.num_epochs // 10)


class _FiveEpochs(_Short):
    """5 epochs of the paper's length, 1 warmup epoch."""

    recipe_epochs, recipe_warmup_epochs = 5, 1


class _Smoke(_Short):
    """3 epochs x 2 iterations, 1 validation iteration: exercises the whole loop in seconds (tests)."""

    recipe_epochs, recipe_warmup_epochs = 3, 1
    recipe_iterations_per_epoch, recipe_val_iterations_per_epoch = 2, 1


class SwinBaseTrainer_5epochs(_FiveEpochs, SwinBaseTrainer):
    pass


class SwinTATrainer_5epochs(_FiveEpochs, SwinTATrainer):
    pass


class SwinACTTrainer_5epochs(_FiveEpochs, SwinACTTrainer):
    pass


class SwinScratchTrainer_5epochs(_FiveEpochs, SwinScratchTrainer):
    pass


class SwinACTTrainer_smoke(_Smoke, SwinACTTrainer):
    """The ACT recipe in seconds (tests)."""


class SwinScratchTrainer_smoke(_Smoke, SwinScratchTrainer):
    """As ``SwinACTTrainer_smoke`` from random initialisation (no checkpoint needed)."""


class SwinSpineTrainer_smoke(_Smoke, SwinSpineTrainer):
    """As ``SwinACTTrainer_smoke`` for the multi-class spine recipe."""


class _NoSelfValidation:
    """nnU-Net's final validation, skipped when the fold validates on its own training cases (the demo preset's one
    fold, ``study_splits.write_demo_fold``): it would predict the training set under the name of validation and cost
    minutes per arm on a CPU. The study predicts its held-out test cases instead; a fold with cases of its own to
    validate on (the subtype arms' folds) is validated as usual."""

    def perform_actual_validation(self, save_probabilities: bool = False):
        train, val = self.do_split()
        if set(val) <= set(train):
            self.print_to_log_file("final validation skipped: this fold's validation cases are its training cases "
                                   "(the study predicts its test cases instead)", also_print_to_console=True)
            return
        super().perform_actual_validation(save_probabilities)


class _Demo(_NoSelfValidation, _Short):
    """The CPU demo's schedule, one for every arm: 40 epochs x 25 iterations (1000 optimiser steps), 4 warmup epochs.

    Chosen by the schedule check (``experiments/demo_schedule.py``, ``experiments/results/demo_schedule/``): the
    ACT arm on the powered demo dataset; about 16 minutes for a 3d_fullres arm and 35 for a 64^3 cubic arm on 2 idle
    cores."""

    recipe_epochs, recipe_warmup_epochs = 40, 4
    recipe_iterations_per_epoch, recipe_val_iterations_per_epoch = 25, 5


class _Quick(_Short):
    """``nnunet-swin demo``'s schedule (the study's ``quickstart`` preset): 30 epochs x 25 iterations, 3 warmup
    epochs (about 9 minutes on 2 idle cores). Shorter than ``_demo``, whose 40 epochs the powered study needs for its
    arms to level off; the quickstart shows the pipeline, it does not compare arms."""

    recipe_epochs, recipe_warmup_epochs = 30, 3
    recipe_iterations_per_epoch, recipe_val_iterations_per_epoch = 25, 5


class SwinACTTrainer_quick(_Quick, SwinACTTrainer):
    """``nnunet-swin demo``'s default trainer: the ACT recipe at the quickstart schedule."""


class SwinScratchTrainer_quick(_Quick, SwinScratchTrainer):
    """As ``SwinACTTrainer_quick`` from random initialisation."""


class SwinBaseTrainer_smoke(_Smoke, SwinBaseTrainer):
    """The Base recipe in seconds (the study's smoke preset)."""


class SwinTATrainer_smoke(_Smoke, SwinTATrainer):
    """The TA recipe in seconds."""


class SwinACTTrainer_demo(_Demo, SwinACTTrainer):
    """What ``nnunet-swin demo`` trains."""


class SwinBaseTrainer_demo(_Demo, SwinBaseTrainer):
    """Base on the demo's schedule (the study's demo preset trains every arm on it)."""


class SwinTATrainer_demo(_Demo, SwinTATrainer):
    """TA on the demo's schedule."""


class SwinScratchTrainer_demo(_Demo, SwinScratchTrainer):
    """Scratch on the demo's schedule (the same steps as every other arm: one schedule, not the recipe's 2x)."""


class SwinMaskedTrainer_5epochs(_FiveEpochs, SwinMaskedTrainer):
    """The Masked arm for 5 epochs."""


class SwinMaskedTrainer_smoke(_Smoke, SwinMaskedTrainer):
    """The Masked arm in seconds."""


class SwinMaskedTrainer_demo(_Demo, SwinMaskedTrainer):
    """The Masked arm on the demo's schedule."""


class SwinACTNoTATrainer_5epochs(_FiveEpochs, SwinACTNoTATrainer):
    """ACT-noTA for 5 epochs."""


class SwinACTNoTATrainer_smoke(_Smoke, SwinACTNoTATrainer):
    """ACT-noTA in seconds."""


class SwinACTNoTATrainer_demo(_Demo, SwinACTNoTATrainer):
    """ACT-noTA on the demo's schedule."""


class SwinACTRepTrainer_5epochs(_FiveEpochs, SwinACTRepTrainer):
    """ACT-rep (seed 1) for 5 epochs."""


class SwinACTRepTrainer_smoke(_Smoke, SwinACTRepTrainer):
    """ACT-rep (seed 1) in seconds."""


class SwinACTRepTrainer_demo(_Demo, SwinACTRepTrainer):
    """ACT-rep (seed 1) on the demo's schedule."""
