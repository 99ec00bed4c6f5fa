"""SMIT's three losses and SMART's class-token distillation, as pure functions on tensors, plus the centres.

Notation (DINO/iBOT): a teacher distribution is ``softmax((t - c) / tau_t)`` with centre ``c``; the student's is
``log_softmax(s / tau_s)``; distillation is the cross-entropy ``-sum_k p_t[k] log p_s[k]``.

- MIP (masked image prediction): ``sum(|x - x_hat| * M) / (sum(M) + 1e-5)`` with ``M`` = masked AND real voxels.
- MPD (masked patch-token distillation, iBOT): per view, the same view's teacher token distribution against the
  student's, over masked (and real) tokens only: per sample ``sum_i CE_i m_i / sum_i m_i``, then the mean over the
  samples that have at least one such token (a sample without targets is left out, not counted as 0; SMIT/iBOT's
  ``loss.mean()`` counts it as 0), then the mean over the views that have any target (0 when none has).
- ITD (image-token distillation, DINO): cross-view, student view ``v`` against teacher view ``q != v``, batch mean,
  averaged over the ordered pairs.
- CTD (SMART): ITD on the semantic class token (its own head and centre).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(target: torch.Tensor, prediction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(|target - prediction| * weight) / (sum(weight) + 1e-5)``; all ``(B, C, D, H, W)`` (weight broadcast)."""
    weight = weight.to(prediction.dtype)
    return (torch.abs(target - prediction) * weight).sum() / (weight.expand_as(prediction).sum() + 1e-5)


def teacher_distribution(logits: torch.Tensor, centre: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax((logits - centre) / temperature)`` over the last axis, in float32."""
    return F.softmax((logits.float() - centre) / temperature, dim=-1)


def cross_entropy(teacher_probs: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``-sum_k p_t log softmax(s / tau)`` over the last axis (one value per row), float32."""
    return -(teacher_probs * F.log_softmax(student_logits.float() / temperature, dim=-1)).sum(dim=-1)


def masked_patch_distillation(teacher_probs: list[torch.Tensor], student_logits: list[torch.Tensor],
                              token_masks: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """MPD. Per view: ``teacher_probs`` ``(B, N, K)``, ``student_logits`` ``(B, N, K)``, ``token_masks`` ``(B, N)``
    bool (masked and real). Returns the scalar mean over views of the mean over samples with targets of per-sample
    masked means (see the module docstring); a graph-connected 0 when no sample of any view has a target."""
    total, views = 0.0, 0
    for p, s, m in zip(teacher_probs, student_logits, token_masks):
        ce = cross_entropy(p, s, temperature)                     # (B, N)
        m = m.to(ce.dtype)
        count = m.sum(dim=1)
        has = count > 0
        if not bool(has.any()):
            continue
        per_sample = (ce * m).sum(dim=1) / count.clamp(min=1.0)
        total = total + per_sample[has].mean()
        views += 1
    if views == 0:
        return (student_logits[0].float() * 0.0).sum()
    return total / views


def cross_view_distillation(teacher_probs: list[torch.Tensor], student_logits: list[torch.Tensor],
                            temperature: float) -> torch.Tensor:
    """ITD/CTD. Per view ``(B, K)``; mean over ordered pairs (student ``v``, teacher ``q != v``) of batch means."""
    total, pairs = 0.0, 0
    for q, p in enumerate(teacher_probs):
        for v, s in enumerate(student_logits):
            if v == q:
                continue
            total = total + cross_entropy(p, s, temperature).mean()
            pairs += 1
    if pairs == 0:
        raise ValueError("cross-view distillation needs at least two views")
    return total / pairs


class Centre(torch.nn.Module):
    """EMA centre of the teacher's outputs: ``c <- m c + (1 - m) mean(batch)`` (DINO; SMIT m = 0.9).

    ``batch_mean`` is computed by the caller (over samples, and over real tokens for the patch centre; averaged over
    DDP ranks). The centre is a buffer, so it travels with ``state_dict`` (exact resume)."""

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = float(momentum)
        self.register_buffer("value", torch.zeros(1, dim))

    @torch.no_grad()
    def update(self, batch_mean: torch.Tensor) -> None:
        self.value.mul_(self.momentum).add_(batch_mean.reshape(1, -1).to(self.value), alpha=1.0 - self.momentum)
