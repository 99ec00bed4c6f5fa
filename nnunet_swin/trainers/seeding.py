"""An explicit seed for a trainer, as far as nnU-Net (nnunetv2 2.8.1) lets one be set.

Stock nnU-Net seeds nothing: network initialisation, patch sampling and augmentation draw from whatever state the
process has, and its data-augmentation workers (``NonDetMultiThreadedAugmenter(seeds=None)``) reseed numpy from the
operating system. :class:`Seeded` is a mixin for any ``nnUNetTrainer`` with a class attribute ``seed``:

- ``initialize()`` seeds Python's ``random``, numpy's global generator and torch (CPU and every CUDA device) with
  ``seed`` before the network is built: the initial weights (everything a pretrained encoder does not overwrite)
  and, with ``nnUNet_n_proc_DA=0`` (augmentation in the main process), every sampled patch and augmentation follow.
- ``get_dataloaders()`` restarts nnU-Net's background augmenters with one seed per worker (``seed * 1000 + 1 + i``
  for training, ``+ 501 + i`` for validation), so each worker's patch sampling (numpy) and augmentation (numpy and
  torch) is a fixed stream.

What stays non-deterministic: with more than one augmentation worker the order in which the workers' batches reach
the training loop depends on timing (nnU-Net's "NonDet" augmenter); on CUDA, cuDNN kernel choice and atomic adds
(``torch.use_deterministic_algorithms`` is not switched on: nnU-Net's 3D kernels have no deterministic version for
every op); a run resumed with ``--c`` reseeds at the resume, so it does not continue the original random stream
(nnU-Net does not checkpoint RNG state). On the CPU with at most one worker, two runs of the same seed are the same.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter

VALIDATION_OFFSET = 500


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)          # also seeds every CUDA device


def worker_seeds(seed: int, workers: int, offset: int = 0) -> list[int]:
    """One seed per augmentation worker, distinct from the main process's and from the other augmenter's."""
    return [seed * 1000 + offset + 1 + i for i in range(workers)]


def reseed_augmenter(augmenter, seeds_of) -> None:
    """Restart a started ``NonDetMultiThreadedAugmenter`` with fixed per-worker seeds (``seeds_of(workers)``); a
    ``SingleThreadedAugmenter`` runs in the main process, seeded by :func:`seed_everything`, and is left alone."""
    if isinstance(augmenter, NonDetMultiThreadedAugmenter):
        augmenter.seeds = seeds_of(augmenter.num_processes)
        augmenter.restart()


class Seeded:
    """Mixin for an ``nnUNetTrainer`` (put it first in the bases): ``seed`` fixes initialisation and the
    augmentation workers' streams (see the module docstring for what stays non-deterministic)."""

    seed: int | None = None

    def initialize(self):
        if self.seed is not None and not self.was_initialized:
            seed_everything(self.seed)
            self.print_to_log_file(f"{type(self).__name__}: seed {self.seed} (random, numpy, torch; augmentation "
                                   f"workers {self.seed} * 1000 + 1 + i)")
        super().initialize()

    def get_dataloaders(self):
        train, val = super().get_dataloaders()
        if self.seed is not None:
            reseed_augmenter(train, lambda n: worker_seeds(self.seed, n))
            reseed_augmenter(val, lambda n: worker_seeds(self.seed, n, VALIDATION_OFFSET))
        return train, val
