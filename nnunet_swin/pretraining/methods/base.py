"""What a pretraining method supplies to the loop (``Method``) and what the loop hands it (``StepInputs``).

The loop (``Pretrainer.train_step``) does, for every method: the teacher forward on the unmasked views (with the
method's ``teacher_noise``), ``masks``, the student forward on the masked views, ``losses`` (a dict of named scalar
terms; each is weighted by ``config.w_<name>``), backward, clipping, the optimiser step, the EMA update of the
teacher, and the centres' EMA update with ``centre_statistics``. ``monitor`` gives the collapse monitor's values.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepInputs:
    """One step, as the methods see it. Crops are ``2B`` rows: view 0 of every sample, then view 1."""
    x: torch.Tensor                  # (2B, 1, X, Y, Z) the crops
    voxel_valid: torch.Tensor        # (2B, X, Y, Z) bool, False on padding
    batch: int                       # B
    step: int                        # global step
    temperatures: dict               # teacher temperatures by centre name ("global", "patch", "class")
    generator: object                # callable(stream) -> torch.Generator, a function of (seed, step, rank, stream)


class Method:
    """Base class. Subclasses set ``name`` (the ``--method`` value), ``centres`` (one centre per distillation head),
    ``class_token`` (the network builds SMART's class attention) and implement ``masks`` and ``losses``."""
    name: str = ""
    order: int = 100                 # listing order of --method choices
    class_token: bool = False
    centres: tuple[str, ...] = ()

    def __init__(self, config) -> None:
        self.config = config

    def teacher_noise(self) -> tuple[str, float]:
        """(kind, sigma) for ``teacher_forward``: a plain EMA teacher by default."""
        return "none", 0.0

    def masks(self, teacher_out: dict, inputs: StepInputs, grid: tuple[int, int, int]) -> torch.Tensor:
        raise NotImplementedError

    def losses(self, teacher_out: dict, student_out: dict, inputs: StepInputs, targets: dict,
               centres) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def centre_statistics(self, teacher_out: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def monitor(self, teacher_out: dict, student_out: dict, inputs: StepInputs, targets: dict, centres) -> dict:
        return {}
