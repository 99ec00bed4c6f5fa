"""Learning-rate schedule of the recipe: linear warmup, then cosine annealing (paper section 2.5.1).

Computed in closed form from the epoch number, so a training resumed with ``nnUNetv2_train --c`` (which restores
the epoch but not scheduler state) continues on exactly the same curve. nnU-Net steps it once per epoch, in
``on_train_epoch_start``, with the epoch index starting at 0.
"""
from __future__ import annotations

import math

from torch.optim.lr_scheduler import LRScheduler


def warmup_cosine_factor(epoch: int, warmup_epochs: int, total_epochs: int, final_factor: float = 0.0,
                         from_zero: bool = False) -> float:
    """Multiplier of the peak learning rate at ``epoch`` (0-based).

    Warmup: ``(epoch + 1) / warmup_epochs`` for ``epoch < warmup_epochs`` (the first epoch already trains), reaching
    1 at the last warmup epoch; with ``from_zero`` it is ``epoch / warmup_epochs`` (MONAI's WarmupCosineSchedule:
    the first epoch runs at lr 0). Then ``final + (1 - final) * (1 + cos(pi * t)) / 2`` with
    ``t = (epoch - warmup_epochs) / (total_epochs - warmup_epochs)``, so the first epoch after warmup is at the peak
    and the curve approaches ``final_factor`` at ``total_epochs``. Epochs past the end stay at ``final_factor``.
    """
    if total_epochs < 1 or warmup_epochs < 0:
        raise ValueError(f"need total_epochs >= 1 and warmup_epochs >= 0, got {total_epochs}, {warmup_epochs}")
    warmup_epochs = min(warmup_epochs, total_epochs)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epoch < warmup_epochs:
        return (epoch + (0 if from_zero else 1)) / warmup_epochs
    if total_epochs == warmup_epochs:
        return 1.0
    t = min(1.0, (epoch - warmup_epochs) / (total_epochs - warmup_epochs))
    return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * t))


class WarmupCosineLRScheduler(LRScheduler):
    """Sets every parameter group's lr to its own base lr (``initial_lr``) times :func:`warmup_cosine_factor`.

    Use as nnU-Net does: ``scheduler.step(epoch)`` at the start of each epoch. Per-group base learning rates are
    kept (a group created with a lower lr stays proportionally lower).
    """

    def __init__(self, optimizer, warmup_epochs: int, total_epochs: int, final_factor: float = 0.0,
                 from_zero: bool = False):
        self.warmup_epochs = int(warmup_epochs)
        self.total_epochs = int(total_epochs)
        self.final_factor = float(final_factor)
        self.from_zero = bool(from_zero)
        warmup_cosine_factor(0, self.warmup_epochs, self.total_epochs)  # validate the arguments early
        super().__init__(optimizer, last_epoch=-1)

    def get_lr(self) -> list[float]:
        factor = warmup_cosine_factor(max(self.last_epoch, 0), self.warmup_epochs, self.total_epochs,
                                      self.final_factor, self.from_zero)
        return [base * factor for base in self.base_lrs]

    def step(self, epoch: int | None = None) -> None:  # noqa: D102 - closed form in the epoch
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        self._step_count = getattr(self, "_step_count", 0) + 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
