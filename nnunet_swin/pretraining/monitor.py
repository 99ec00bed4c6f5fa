"""The collapse monitor: is the self-distillation learning, or has it collapsed?

DINO-style distillation has a trivial solution where the teacher's output stops depending on the input: the centre
absorbs it, the teacher target becomes uniform, the student copies it and the cross-entropy sits at exactly ln K with
no gradient left (DINO, Caron et al. 2021, Fig. 7 diagnoses it with the teacher entropy and the teacher-student KL).
Per step and per distillation head (``itd``, ``mpd``, SMART's ``ctd``) ``head_statistics`` gives:

- ``teacher_entropy_<head>``: the mean entropy (nats) of the teacher's (centred, sharpened) distributions; ln K
  means a uniform target;
- ``batch_entropy_<head>``: the entropy of the batch-mean teacher distribution (low: one prototype dominates, the
  other collapse);
- ``kl_<head>``: KL(teacher || student) over the rows the loss uses (0: nothing left to learn);
- ``logit_std_<head>``: the std over the batch's rows of the teacher's raw logits, mean over prototypes (about 0:
  the teacher's output does not depend on the input);
- ``cosine_<head>``: the mean cosine between the student's L2-normalised bottleneck outputs of different samples
  (1: every crop gets the same output). With one sample per step the two views' rows are compared instead.

SMART adds ``class_attention_entropy``: the teacher's class-attention entropy over the valid tokens divided by
ln(valid tokens), mean over samples and heads (1: flat attention, so "attention-guided" masks are random).

``collapsed_heads(rows, k)``: the heads of one epoch's ``rows`` that show either sign of collapse,
``collapse_warning`` the one line the log and the console print:

- *fast* (the student's outputs identical): every step has a teacher entropy within ``ENTROPY_MARGIN`` of ln K and a
  cosine above ``COSINE_LIMIT``;
- *slow* (the teacher's output no longer depends on the input, while the student's outputs still differ a little):
  over the epoch, a mean teacher entropy within ``SLOW_ENTROPY_MARGIN`` of ln K and a mean logit std below
  ``LOGIT_STD_LIMIT``. Added after a crop-64 iBOT run sat at teacher entropy ln K - 0.007, logit std 0.004 and
  cosine 0.99 for its last four epochs, under the fast rule's cosine; no run that learned came near it (the crop-32
  runs: entropy at least 0.035 below ln K, or a logit std of 0.013 or more;
  ``experiments/results/pretraining_acceptance/``). A slow start has a high entropy but a logit std of 0.01 or
  more, the acceptance bar for "the teacher's output depends on the input".
"""
from __future__ import annotations

import math

import torch

HEADS = ("itd", "mpd", "ctd")
HEAD_NAMES = {"itd": "image-token (ITD)", "mpd": "masked-patch (MPD)", "ctd": "class-token (CTD)"}
ENTROPY_MARGIN = 0.01
COSINE_LIMIT = 0.999
SLOW_ENTROPY_MARGIN = 0.02
LOGIT_STD_LIMIT = 0.01
STATISTICS = ("teacher_entropy", "batch_entropy", "kl", "logit_std", "cosine")


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log(p.clamp(min=1e-30))).sum(dim=-1)


def cross_sample_cosine(z: torch.Tensor, sample: torch.Tensor) -> float:
    """Mean cosine over pairs of rows of ``z`` ``(R, D)`` from different samples (``sample`` ``(R,)`` ids); all
    distinct pairs when every row is from one sample. ``nan`` with fewer than two rows."""
    z = torch.nn.functional.normalize(z.detach().float(), dim=-1)
    r = z.shape[0]
    if r < 2:
        return float("nan")
    total = z.sum(0)
    ids = torch.unique(sample)
    if len(ids) < 2:
        return float(((total @ total) - r) / (r * (r - 1)))
    sums = torch.stack([z[sample == i].sum(0) for i in ids])
    counts = torch.stack([(sample == i).sum() for i in ids]).float()
    pairs = r * r - float((counts ** 2).sum())
    return float(((total @ total) - (sums * sums).sum()) / pairs)


@torch.no_grad()
def head_statistics(teacher_logits: torch.Tensor, teacher_probs: torch.Tensor, student_logits: torch.Tensor,
                    student_temp: float, kl_rows: torch.Tensor | None, bottleneck: torch.Tensor,
                    sample: torch.Tensor) -> dict[str, float]:
    """One head's monitor values (see the module docstring).

    ``teacher_logits``/``teacher_probs`` ``(R, K)``: the teacher's raw logits and its distribution on the real rows
    (samples, or tokens); ``student_logits`` ``(R, K)``: the student rows the loss pairs with each teacher row (ITD:
    the other view of the same sample; MPD: the same token); ``kl_rows`` ``(R,)`` bool: the rows the loss uses
    (MPD: masked tokens; None = all); ``bottleneck`` ``(R, D)`` the student's bottleneck rows, ``sample`` ``(R,)``
    their sample ids."""
    p = teacher_probs.detach().float()
    h = _entropy(p)
    out = {"teacher_entropy": float(h.mean()), "batch_entropy": float(_entropy(p.mean(0)))}
    log_s = torch.log_softmax(student_logits.detach().float() / student_temp, dim=-1)
    kl = (p * (torch.log(p.clamp(min=1e-30)) - log_s)).sum(-1)
    if kl_rows is not None:
        kl = kl[kl_rows]
    out["kl"] = float(kl.mean()) if kl.numel() else float("nan")
    t = teacher_logits.detach().float()
    out["logit_std"] = float(t.std(dim=0, unbiased=False).mean()) if t.shape[0] > 1 else float("nan")
    out["cosine"] = cross_sample_cosine(bottleneck, sample)
    return out


@torch.no_grad()
def attention_entropy(attention: torch.Tensor, valid: torch.Tensor) -> float:
    """Normalised entropy of class attention ``(B, heads, N)`` over the valid tokens ``(B, N)``: H / ln(n_valid),
    mean over samples (with >= 2 valid tokens) and heads."""
    a = attention.detach().float()
    n = valid.sum(-1).float()
    keep = n >= 2
    if not bool(keep.any()):
        return float("nan")
    h = _entropy(a) / torch.log(n.clamp(min=2.0)).unsqueeze(1)
    return float(h[keep].mean())


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values and len(values) == len(rows) else None


def collapsed_heads(rows: list[dict], out_dim: int) -> list[str]:
    """Heads whose epoch (``rows``, one per step) shows a uniform teacher and either identical student outputs at
    every step (fast) or, on average, a teacher output that no longer depends on the input (slow)."""
    ln_k = math.log(out_dim)
    heads = []
    for head in HEADS:
        key_h, key_c, key_s = f"teacher_entropy_{head}", f"cosine_{head}", f"logit_std_{head}"
        own = [r for r in rows if key_h in r]
        if not own:
            continue
        fast = all(r.get(key_h) is not None and r.get(key_c) is not None and r[key_h] >= ln_k - ENTROPY_MARGIN
                   and r[key_c] > COSINE_LIMIT for r in own)
        h, std = _mean(own, key_h), _mean(own, key_s)
        slow = h is not None and std is not None and h >= ln_k - SLOW_ENTROPY_MARGIN and std < LOGIT_STD_LIMIT
        if fast or slow:
            heads.append(head)
    return heads


def collapse_warning(heads: list[str], epoch: int, rows: list[dict], out_dim: int) -> str:
    """The one line printed when ``collapsed_heads`` finds any."""
    ln_k = math.log(out_dim)
    parts = []
    for head in heads:
        h, c, std = (_mean(rows, f"{stat}_{head}") for stat in ("teacher_entropy", "cosine", "logit_std"))
        parts.append(f"{head.upper()} teacher entropy {h:.4f} (ln K {ln_k:.4f})"
                     + (f", cosine {c:.4f}" if c is not None else "")
                     + (f", teacher logit std {std:.4f}" if std is not None else ""))
    return (f"warning: distillation collapsed in epoch {epoch + 1} ({'; '.join(parts)}): the teacher's output no "
            "longer depends on the input, so these losses sit at ln K with no gradient and more steps will not "
            "help; only the reconstruction term still trains the encoder. Use volumes that differ from each other, "
            "at least 2 volumes per step (--batch-size), the iBOT masking (--masking ibot), a lower "
            "--teacher-temp, or --w-mpd 0 --w-itd 0 (--w-ctd 0) for a reconstruction-only run")


__all__ = ["HEADS", "STATISTICS", "head_statistics", "attention_entropy", "cross_sample_cosine", "collapsed_heads",
           "collapse_warning", "ENTROPY_MARGIN", "COSINE_LIMIT", "SLOW_ENTROPY_MARGIN", "LOGIT_STD_LIMIT"]
