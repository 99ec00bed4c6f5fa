"""An explicit seed for a trainer, as far as nnU-Net (nnunetv2 2.8.1) lets one be set.

Stock nnU-Net seeds nothing: network initialisation, patch sampling and augmentation draw from whatever state the
process has, and its data-augmentation workers (``NonDetMultiThreadedAugmenter(seeds=None)``) reseed numpy from the
operating system. :class:`Seeded` is a mixin for any ``nnUNetTrainer`` with a class attribute ``seed``:

- ``initialize()`` seeds Python's ``random``, numpy's global generator and torch (CPU and every CUDA device) with
  ``seed`` before the network is built: the initial weights (everything a pretrained encoder does not overwrite)
  and, with ``nnUNet_n_proc_DA=0`` (augmentation in the main process), every sampled patch and augmentation follow.
- ``get_dataloaders()`` gives nnU-Net's background augmenters one seed per worker (``seed * 100000 + 1 + i`` for
  training, ``+ 501 + i`` for validation; under DDP ``+ 1000 * rank``, so ranks draw different patches), so each
  worker's patch sampling (numpy) and augmentation (numpy and torch) is a fixed stream. nnU-Net builds and starts
  them inside ``get_dataloaders`` with ``seeds=None``; the one way in without copying that method is the name it
  builds them by: while ``super().get_dataloaders()`` runs, the name ``NonDetMultiThreadedAugmenter`` in nnU-Net's
  trainer module stands for a function that adds the seeds (:func:`seeded_augmenters`; put back afterwards, also on
  error). Restarting started augmenters instead races with batches in flight (a traceback from the old results
  thread).

What stays non-deterministic: with more than one augmentation worker the order in which the workers' batches reach
the training loop depends on timing (nnU-Net's "NonDet" augmenter); on CUDA, cuDNN kernel choice and atomic adds
(``torch.use_deterministic_algorithms`` is not switched on: nnU-Net's 3D kernels have no deterministic version for
every op); a run resumed with ``--c`` reseeds at the resume, so it does not continue the original random stream
(nnU-Net does not checkpoint RNG state). On the CPU with at most one worker, two runs of the same seed are the same.
"""
from __future__ import annotations

import contextlib
import inspect
import itertools
import random

import numpy as np
import torch

VALIDATION_OFFSET = 500


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)          # also seeds every CUDA device


def worker_seeds(seed: int, workers: int, offset: int = 0, rank: int = 0) -> list[int]:
    """One seed per augmentation worker, distinct from the main process's, from the other augmenter's and (under
    DDP, ``rank``) from the other ranks' workers."""
    return [seed * 100_000 + rank * 1000 + offset + 1 + i for i in range(workers)]


@contextlib.contextmanager
def seeded_augmenters(seed: int, module=None, rank: int = 0):
    """While inside, ``module.NonDetMultiThreadedAugmenter(...)`` (nnU-Net's trainer module by default) builds the
    augmenter with fixed per-worker seeds: the first one built gets :func:`worker_seeds` ``(seed, n)``, the next
    (validation) ``offset = VALIDATION_OFFSET``. Without that name in the module (another nnU-Net) nothing changes."""
    if module is None:
        import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as module
    original = getattr(module, "NonDetMultiThreadedAugmenter", None)
    if original is None:
        yield
        return
    built = itertools.count()

    def seeded(*args, **kwargs):
        call = inspect.signature(original).bind(*args, **kwargs)
        call.arguments["seeds"] = worker_seeds(seed, call.arguments["num_processes"],
                                               VALIDATION_OFFSET * min(next(built), 1), rank)
        return original(*call.args, **call.kwargs)

    module.NonDetMultiThreadedAugmenter = seeded
    try:
        yield
    finally:
        module.NonDetMultiThreadedAugmenter = original


class Seeded:
    """Mixin for an ``nnUNetTrainer`` (put it first in the bases): ``seed`` fixes initialisation and the
    augmentation workers' streams (see the module docstring for what stays non-deterministic)."""

    seed: int | None = None

    def initialize(self):
        if self.seed is not None and not self.was_initialized:
            seed_everything(self.seed)
            self.print_to_log_file(f"{type(self).__name__}: seed {self.seed} (random, numpy, torch; augmentation "
                                   f"workers {self.seed} * 100000 + 1 + i)")
        super().initialize()

    def get_dataloaders(self):
        if self.seed is None:
            return super().get_dataloaders()
        if self.is_ddp:     # the same weights on every rank (DDP broadcasts rank 0's anyway), different patches
            np.random.seed(self.seed * 100_000 + self.local_rank * 1000)
        with seeded_augmenters(self.seed, rank=self.local_rank if self.is_ddp else 0):
            return super().get_dataloaders()
