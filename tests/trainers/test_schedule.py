"""Warmup + cosine learning-rate schedule: closed form in the epoch, per-group, resumable."""
import math

import pytest
import torch
from hypothesis import given, strategies as st

from nnunet_swin.trainers.schedule import WarmupCosineLRScheduler, warmup_cosine_factor


def test_paper_schedule_key_points():
    assert warmup_cosine_factor(0, 50, 500) == pytest.approx(1 / 50)
    assert warmup_cosine_factor(49, 50, 500) == pytest.approx(1.0)
    assert warmup_cosine_factor(50, 50, 500) == pytest.approx(1.0)
    assert warmup_cosine_factor(275, 50, 500) == pytest.approx(0.5)
    assert warmup_cosine_factor(499, 50, 500) == pytest.approx(0.5 * (1 + math.cos(math.pi * 449 / 450)))
    assert warmup_cosine_factor(499, 50, 500) < 1e-4
    assert warmup_cosine_factor(10_000, 50, 500) == 0.0


@given(st.integers(0, 200), st.integers(1, 1000))
def test_linear_up_then_monotonically_down_and_bounded(warmup, total):
    values = [warmup_cosine_factor(e, warmup, total) for e in range(total)]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in values)
    w = min(warmup, total)
    assert all(b > a for a, b in zip(values[:w], values[1:w]))           # strictly increasing warmup
    assert all(b <= a + 1e-12 for a, b in zip(values[w:], values[w + 1:]))  # non-increasing afterwards


@pytest.mark.parametrize("args", [(-1, 5, 10), (0, -1, 10), (0, 5, 0)])
def test_invalid_arguments(args):
    with pytest.raises(ValueError):
        warmup_cosine_factor(*args)


def test_scheduler_sets_every_group_from_its_own_base_lr_and_resumes_exactly():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.AdamW([{"params": [params[0]]}, {"params": [params[1]], "lr": 3e-5}], lr=3e-4)
    sched = WarmupCosineLRScheduler(opt, warmup_epochs=5, total_epochs=20)
    for epoch in range(12):
        sched.step(epoch)
    f = warmup_cosine_factor(11, 5, 20)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([3e-4 * f, 3e-5 * f])
    # a fresh optimizer + scheduler (what --c builds) lands on the same value from the epoch number alone
    opt2 = torch.optim.AdamW([{"params": [params[0]]}, {"params": [params[1]], "lr": 3e-5}], lr=3e-4)
    sched2 = WarmupCosineLRScheduler(opt2, warmup_epochs=5, total_epochs=20)
    opt2.load_state_dict(opt.state_dict())  # nnU-Net restores the optimizer state (incl. the stale lr)
    sched2.step(11)
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([3e-4 * f, 3e-5 * f])
    assert sched2.get_last_lr() == pytest.approx([3e-4 * f, 3e-5 * f])


def test_warmup_from_zero_is_monais_convention():
    from nnunet_swin.trainers.schedule import warmup_cosine_factor
    assert warmup_cosine_factor(0, 50, 500, from_zero=True) == 0.0
    assert warmup_cosine_factor(25, 50, 500, from_zero=True) == 0.5
    assert warmup_cosine_factor(0, 50, 500) == 1 / 50
    assert warmup_cosine_factor(50, 50, 500, from_zero=True) == warmup_cosine_factor(50, 50, 500) == 1.0


def test_the_demo_schedule_skips_a_validation_of_its_own_training_cases_only():
    from nnunet_swin.trainers.cnn_baseline import nnUNetTrainer_demo
    from nnunet_swin.trainers.short_variants import SwinACTTrainer_demo, _NoSelfValidation

    assert issubclass(SwinACTTrainer_demo, _NoSelfValidation) and issubclass(nnUNetTrainer_demo, _NoSelfValidation)

    class Stock:                      # stands where nnUNetTrainer.perform_actual_validation sits in the MRO
        def perform_actual_validation(self, save_probabilities=False):
            self.validated = True

    class Trainer(_NoSelfValidation, Stock):
        def __init__(self, train, val):
            self.split, self.validated, self.log = (train, val), False, []

        def do_split(self):
            return self.split

        def print_to_log_file(self, *args, **kwargs):
            self.log.append(" ".join(args))

    own = Trainer(["a", "b"], ["a", "b"])
    own.perform_actual_validation()
    assert not own.validated and "final validation skipped" in own.log[0]
    held_out = Trainer(["a", "b"], ["c"])
    held_out.perform_actual_validation()
    assert held_out.validated and not held_out.log
