"""The momentum (EMA) teacher and SMART's noisy teacher.

``ema_update(teacher, student, m)``: ``theta_T <- m theta_T + (1 - m) theta_S`` for every parameter the two modules
share by name (the student's mask token and reconstruction decoder have no teacher counterpart); buffers (e.g.
relative-position indices) are left alone.

Noisy teacher (SMART: "noise regularised teacher" keeps attention heads diverse; the kind of noise is not public).
Switch ``kind``:

- ``"weights"`` (default): the teacher's forward runs with ``theta_T + sigma * std(theta_T) * eps`` per tensor
  (``eps ~ N(0, 1)`` drawn anew each step) through ``torch.func.functional_call``; the stored teacher weights, and
  hence the EMA, are never changed;
- ``"dropout"``: feature dropout with probability ``sigma`` on the teacher's last-stage tokens before the heads;
- ``"none"``: a plain EMA teacher (SMIT).
[unverified: every choice here is ours.]
"""
from __future__ import annotations


import torch
from torch import nn
from torch.func import functional_call

from nnunet_swin.pretraining.settings import NOISE_KINDS  # noqa: F401 (the config checks it first)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    student_params = dict(student.named_parameters())
    for name, t in teacher.named_parameters():
        s = student_params.get(name)
        if s is None:
            continue
        t.mul_(momentum).add_(s.detach().to(t.dtype), alpha=1.0 - momentum)


def noisy_parameters(module: nn.Module, sigma: float, generator: torch.Generator | None = None) -> dict:
    """``{name: p + sigma * std(p) * eps}`` for every floating parameter (scalars and constant tensors get
    ``sigma * eps``-free copies: a zero standard deviation adds nothing)."""
    out = {}
    for name, p in module.named_parameters():
        if p.numel() > 1 and p.is_floating_point():
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype)
            out[name] = p + sigma * p.detach().float().std().to(p.dtype) * noise
        else:
            out[name] = p
    return out


def teacher_forward(teacher: nn.Module, kind: str, sigma: float, *args,
                    generator: torch.Generator | None = None, **kwargs):
    """Run ``teacher(*args, **kwargs)`` under no_grad with the configured noise (see the module docstring).

    For ``"dropout"`` the teacher module itself applies it: it is passed ``feature_dropout=sigma``."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown teacher noise {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    with torch.no_grad():
        if kind == "weights" and sigma > 0:
            return functional_call(teacher, noisy_parameters(teacher, sigma, generator), args, kwargs)
        if kind == "dropout" and sigma > 0:
            return teacher(*args, feature_dropout=sigma, dropout_generator=generator, **kwargs)
        return teacher(*args, **kwargs)
