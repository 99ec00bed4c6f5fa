"""Closed-form schedules, all functions of the *global* step or the epoch (so a resumed run is on the same curve).

- momentum of the EMA teacher: cosine from ``base`` (SMIT 0.996) to 1 over the whole run, on the global step
  ``epoch * iterations_per_epoch + iteration`` (SMIT's public script indexes it with the step inside the epoch, so
  its momentum stays near 0.996; that is not reproduced);
- teacher temperatures (per epoch): global 0.04 -> 0.07 linearly over the first 30 epochs; patch held at 0.04 for
  30 epochs, then 0.04 -> 0.07 over 30 epochs; then constant;
- learning rate (per global step): linear warmup from 0 over ``warmup_epochs``, then cosine to ``min_lr``;
- ``teacher_init_share(steps, total, base)``: ``prod_{t < steps} m_t``, the share of its initial weights the EMA
  teacher still holds after ``steps`` updates (0.74 after 150 of 150 steps, 0.45 after 400 of 400, 0.14 after 1000
  of 1000 at base 0.996);
- ``RampPlan``: the ramps of a run in steps, scaled by ``epochs / REFERENCE_EPOCHS`` (SMIT's 500) when a ramp would
  not fit in the run.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

REFERENCE_EPOCHS = 500          # SMIT's run length, against which its ramps are counted


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


def teacher_init_share(steps: int, total_steps: int, base: float = 0.996) -> float:
    """``prod_{t=0}^{steps-1} teacher_momentum(t, total_steps, base)`` (the EMA update after step t uses m_t)."""
    log_share = 0.0
    for t in range(max(int(steps), 0)):
        m = teacher_momentum(t, total_steps, base)
        if m <= 0.0:
            return 0.0
        log_share += math.log(m)
    return math.exp(log_share)


@dataclass(frozen=True)
class RampPlan:
    """Every ramp of a run, in steps: lr warmup, global teacher-temperature warmup, patch-temperature delay and
    warmup, last-layer freezing. ``scale`` is 1 unless the run was shorter than a ramp (then ``epochs / 500``)."""
    lr_warmup: int
    temp_warmup: int
    patch_delay: int
    patch_warmup: int
    freeze_last_layer: int
    scale: float

    @classmethod
    def for_run(cls, epochs: int, iterations: int, lr_warmup_epochs: int, temp_warmup_epochs: int,
                patch_delay_epochs: int, patch_warmup_epochs: int, freeze_epochs: int, scaling: bool = True
                ) -> "RampPlan":
        ramps = (lr_warmup_epochs, temp_warmup_epochs, patch_delay_epochs, patch_warmup_epochs, freeze_epochs)
        longest = max(lr_warmup_epochs, temp_warmup_epochs, patch_delay_epochs + patch_warmup_epochs, freeze_epochs)
        scale = epochs / REFERENCE_EPOCHS if scaling and longest > epochs and epochs < REFERENCE_EPOCHS else 1.0

        def steps(n_epochs):
            if n_epochs <= 0:
                return 0
            return max(1, int(round(n_epochs * scale * iterations)))
        return cls(*(steps(r) for r in ramps), scale=scale)

    def describe(self) -> dict:
        return asdict(self)
