"""Closed-form schedules, all functions of the *global* step or the epoch (so a resumed run is on the same curve).

- momentum of the EMA teacher: cosine from ``base`` (SMIT 0.996) to 1 over the whole run, on the global step
  ``epoch * iterations_per_epoch + iteration`` (SMIT's public script indexes it with the step inside the epoch, so
  its momentum stays near 0.996; that is not reproduced);
- teacher temperatures (per epoch): global 0.04 -> 0.07 linearly over the first 30 epochs; patch held at 0.04 for
  30 epochs, then 0.04 -> 0.07 over 30 epochs; then constant;
- learning rate (per global step): linear warmup from 0 over ``warmup_epochs``, then cosine to ``min_lr``.
"""
from __future__ import annotations

import math


def teacher_momentum(step: int, total_steps: int, base: float = 0.996) -> float:
    """``1 - (1 - base) * (cos(pi * step / total) + 1) / 2``: ``base`` at step 0, 1 at ``total_steps``."""
    if total_steps <= 0:
        return 1.0
    t = min(max(step, 0), total_steps) / total_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0


def linear_ramp(epoch: int, start: float, end: float, ramp_epochs: int, delay_epochs: int = 0) -> float:
    """``start`` for the first ``delay_epochs`` epochs, then ``np.linspace(start, end, ramp_epochs)`` epoch by epoch
    (iBOT's schedule: ``end`` is reached at epoch ``delay + ramp - 1``), then ``end``."""
    e = epoch - delay_epochs
    if e < 0:
        return start
    if ramp_epochs <= 1:
        return end
    return start + (end - start) * min(e / (ramp_epochs - 1), 1.0)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, peak: float, floor: float = 1e-6) -> float:
    """Linear warmup ``0 -> peak`` over ``warmup_steps``, then cosine ``peak -> floor`` until ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * step / warmup_steps
    rest = max(total_steps - warmup_steps, 1)
    t = min(max(step - warmup_steps, 0), rest) / rest
    return floor + (peak - floor) * (1.0 + math.cos(math.pi * t)) / 2.0
