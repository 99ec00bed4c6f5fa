"""EMA update and its schedule on the global step; temperatures; the noisy teacher."""
import pytest
import torch
from torch import nn

from nnunet_swin.networks.presets import get_preset
from nnunet_swin.pretraining.model import build_pair
from nnunet_swin.pretraining.schedules import linear_ramp, teacher_momentum, warmup_cosine
from nnunet_swin.pretraining.teacher import ema_update, teacher_forward


def test_ema_update_is_m_teacher_plus_one_minus_m_student_on_shared_names():
    s, t = nn.Linear(2, 2), nn.Linear(2, 2)
    s.extra = nn.Parameter(torch.ones(3))  # student-only parameter: ignored
    with torch.no_grad():
        s.weight.fill_(1.0), s.bias.fill_(2.0), t.weight.fill_(0.0), t.bias.fill_(0.0)
    ema_update(t, s, 0.75)
    assert torch.allclose(t.weight, torch.full((2, 2), 0.25)) and torch.allclose(t.bias, torch.full((2,), 0.5))


def test_momentum_runs_cosine_from_0996_to_1_over_the_global_step():
    total = 1000
    assert teacher_momentum(0, total) == pytest.approx(0.996)
    assert teacher_momentum(total, total) == pytest.approx(1.0)
    assert teacher_momentum(500, total) == pytest.approx(0.998)
    values = [teacher_momentum(s, total) for s in range(0, total + 1, 50)]
    assert values == sorted(values)
    # the global step, not the step inside an epoch: epoch 3, iteration 0 of 100 iterations is step 300
    assert teacher_momentum(3 * 100 + 0, total) > teacher_momentum(0, total) + 1e-4


def test_teacher_temperatures_follow_smit():
    assert linear_ramp(0, 0.04, 0.07, 30) == pytest.approx(0.04)
    assert linear_ramp(29, 0.04, 0.07, 30) == pytest.approx(0.07)
    assert linear_ramp(100, 0.04, 0.07, 30) == pytest.approx(0.07)
    assert linear_ramp(29, 0.04, 0.07, 30, delay_epochs=30) == pytest.approx(0.04)      # patch: held
    assert linear_ramp(30 + 29, 0.04, 0.07, 30, delay_epochs=30) == pytest.approx(0.07)
    assert 0.04 < linear_ramp(45, 0.04, 0.07, 30, delay_epochs=30) < 0.07


def test_warmup_then_cosine():
    assert warmup_cosine(0, 100, 10, 1.0, 0.0) == 0.0
    assert warmup_cosine(5, 100, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(10, 100, 10, 1.0, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10, 1.0, 0.0) == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["weights", "dropout"])
def test_noisy_teacher_changes_outputs_and_touches_neither_teacher_weights_nor_student(kind):
    torch.manual_seed(0)
    student, teacher = build_pair(get_preset("smit_tiny"), "smart", out_dim=32, head_hidden=16, head_bottleneck=8)
    x = torch.rand(1, 1, 32, 32, 32)
    v = torch.ones(1, 32, 32, 32, dtype=torch.bool)
    before_t = {k: p.clone() for k, p in teacher.state_dict().items()}
    before_s = {k: p.clone() for k, p in student.state_dict().items()}
    clean = teacher_forward(teacher, "none", 0.0, x, v)
    sigma = 0.05 if kind == "weights" else 0.3
    noisy = teacher_forward(teacher, kind, sigma, x, v, generator=torch.Generator().manual_seed(1))
    again = teacher_forward(teacher, "none", 0.0, x, v)
    for key in ("patch_logits", "global_logits", "class_logits", "attention"):
        assert not torch.allclose(clean[key], noisy[key], atol=1e-6), key
        assert torch.equal(clean[key], again[key])
    assert all(torch.equal(before_t[k], p) for k, p in teacher.state_dict().items())
    assert all(torch.equal(before_s[k], p) for k, p in student.state_dict().items())
    assert not noisy["patch_logits"].requires_grad
