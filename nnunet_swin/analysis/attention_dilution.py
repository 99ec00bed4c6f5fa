"""Attention dilution index (ADI): the share of attention entropy real queries spend on padding keys.

Paper section 2.4, equations (6) and (7). For a real query token i with post-softmax weights a_ij over the N keys
of its window:

    H_RR_i = -sum_{j real} a_ij log a_ij          H_RP_i = -sum_{j pad} a_ij log a_ij
    ADI    = sum_i H_RP_i / (sum_i H_RR_i + sum_i H_RP_i)

Padding keys come in two kinds, reported separately (``token_kind`` of the probe events):
1 = zero-padding of the input (the crop is longer than the scan), 2 = Swin's own window padding (a feature map
that is not a multiple of the window). ``adi = adi_input + adi_window``.

Pooling, exactly:
1. per (scan, stage, block, head) the entropy sums run over every real query of every window of that scan
   (float32 sums over the <= 343 real queries of a window, per key, then float64 over keys and windows);
   ADI of that cell = pooled sum H_RP / pooled total entropy; NaN when the total entropy is 0 (one-hot rows);
2. the stage value of a scan is the mean over heads and blocks of the cells, NaN cells left out
   (NaN when every cell is NaN);
3. a summary over scans is the mean over scans (NaN scans left out), computed by the caller.
The pad attention mass (sum over pad keys of a_ij, the mean over real queries) is pooled the same way; it is
reported next to the ADI because a concentrated pad "sink" takes much mass but little entropy.

Two readings of the paper. Eq. (7) pools the entropy sums over all real queries of a scan before dividing (step 1
above: ``adi``, the default everywhere). The text says ADI is "averaged across heads, windows, blocks and scans",
which reads as one ratio per window, then a mean. Both are reported: ``adi_window_mean`` takes, per (scan, stage,
block, head), the mean over windows (with a real query and non-zero entropy) of that window's
H_RP / (H_RR + H_RP), then averages like step 2. Windows with few real queries weigh as much as full ones in it.

``xlogy(a, a)`` (``torch.special.xlogy``) makes exact zeros of the softmax contribute 0 instead of NaN.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from nnunet_swin.networks.token_kinds import TOKEN_REAL

# per-cell float64 sums, in this order (the last two: sum over windows of the per-window ADI, and their number)
_FIELDS = ("h_real", "h_input", "h_window", "mass_input", "mass_window", "n_queries", "adi_windows", "n_windows")


def attention_dilution_sums(attn: torch.Tensor, token_kind: torch.Tensor, scans: int = 1) -> torch.Tensor:
    """Entropy and mass sums over real queries for one block.

    attn: (scans*nW, heads, N, N) post-softmax weights, windows scan-major (Swin's ``window_partition`` order).
    token_kind: (scans*nW, N) int, 0 real / 1 input padding / 2 window padding (``networks.token_kinds``; the same
    for queries and keys).
    Returns float64 (scans, heads, 8): sum H_RR, sum H_RP(input), sum H_RP(window), sum mass(input),
    sum mass(window), number of real queries (sums over all real queries of the scan's windows), then the sum over
    windows of the per-window ADI and the number of windows it sums (windows with non-zero entropy).
    """
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attn must be (windows, heads, N, N), got {tuple(attn.shape)}")
    windows, heads, n, _ = attn.shape
    if token_kind.shape != (windows, n):
        raise ValueError(f"token_kind must be {(windows, n)}, got {tuple(token_kind.shape)}")
    if windows % scans:
        raise ValueError(f"{windows} windows do not split into {scans} scans")
    a = attn.detach().float()
    kind = token_kind.to(a.device).long()
    is_real = kind == TOKEN_REAL                                                 # (W, N)
    scan_of = torch.arange(windows, device=a.device) // (windows // scans)       # (W,) windows are scan-major
    keep = is_real.any(dim=1)
    if not bool(keep.all()):                      # windows without a real query contribute nothing: skip them
        a, kind, is_real, scan_of = a[keep], kind[keep], is_real[keep], scan_of[keep]
    real_q = is_real.to(a.dtype)[:, None, None, :]                              # (W', 1, 1, N) query weights
    onehot = torch.nn.functional.one_hot(kind.clamp(0, 2), 3).double()         # (W', N, 3) key kind
    # column sums over real queries (float32 over <= 343 rows), then float64 for everything after
    h_cols = -torch.matmul(real_q, torch.special.xlogy(a, a)).squeeze(2).double()   # (W', heads, N)
    m_cols = torch.matmul(real_q, a).squeeze(2).double()
    entropy = torch.einsum("whn,wnk->whk", h_cols, onehot)                      # (W', heads, 3)
    total = entropy.sum(dim=-1, keepdim=True)
    counted = (total > 0).double()
    window_adi = (entropy[..., 1:].sum(dim=-1, keepdim=True) / total.clamp_min(1e-300)) * counted
    per_window = torch.cat([entropy, torch.einsum("whn,wnk->whk", m_cols, onehot)[..., 1:],
                            is_real.double().sum(dim=1)[:, None, None].expand(-1, heads, 1),
                            window_adi, counted], dim=-1)
    out = torch.zeros(scans, heads, len(_FIELDS), dtype=torch.float64, device=a.device)
    return out.index_add_(0, scan_of, per_window)


@dataclass
class StageDilution:
    """One scan, one stage: pooled-then-averaged values (see module docstring)."""

    adi: float
    adi_input: float
    adi_window: float
    mass_input: float
    mass_window: float
    real_queries: int
    adi_window_mean: float = float("nan")   # the mean-over-windows reading (module docstring)

    @property
    def mass(self) -> float:
        return self.mass_input + self.mass_window


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def reduce_cells(cells: np.ndarray) -> StageDilution:
    """cells: (blocks*heads, 8) float64 sums of one scan and stage -> the stage's ADI and masses.

    Per cell ADI = H_RP / (H_RR + H_RP) (NaN when the total is 0), then the NaN-free mean over cells.
    """
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, len(_FIELDS))
    total = cells[:, 0] + cells[:, 1] + cells[:, 2]
    nq = cells[:, 5]
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = total > 0
        adi_in = np.where(ok, cells[:, 1] / np.where(ok, total, 1.0), np.nan)
        adi_win = np.where(ok, cells[:, 2] / np.where(ok, total, 1.0), np.nan)
        has_q = nq > 0
        m_in = np.where(has_q, cells[:, 3] / np.where(has_q, nq, 1.0), np.nan)
        m_win = np.where(has_q, cells[:, 4] / np.where(has_q, nq, 1.0), np.nan)
        has_w = cells[:, 7] > 0
        per_window = np.where(has_w, cells[:, 6] / np.where(has_w, cells[:, 7], 1.0), np.nan)
    return StageDilution(adi=_nanmean(adi_in + adi_win), adi_input=_nanmean(adi_in), adi_window=_nanmean(adi_win),
                         mass_input=_nanmean(m_in), mass_window=_nanmean(m_win),
                         real_queries=int(nq.max()) if nq.size else 0, adi_window_mean=_nanmean(per_window))


class AttentionDilutionMeter:
    """Probe callback that accumulates ADI sums per (scan, stage, block, head).

    Use: ``meter.start_batch(case_ids)``; ``with net.encoder.attention_probe(meter): net(x, padding_mask=m)``;
    repeat; then ``meter.results()``. ``case_ids`` are the scans of the batch in batch order.
    """

    def __init__(self) -> None:
        self._cells: dict[str, dict[tuple[int, int], torch.Tensor]] = defaultdict(dict)
        self._case_ids: list[str] = []
        self._order: list[str] = []

    def start_batch(self, case_ids: list[str]) -> None:
        dup = set(case_ids) & set(self._order)
        if dup or len(set(case_ids)) != len(case_ids):
            raise ValueError(f"case ids seen twice: {sorted(dup) or case_ids}")
        self._case_ids = list(case_ids)
        self._order += self._case_ids

    def __call__(self, event) -> None:
        if not self._case_ids:
            raise RuntimeError("call start_batch(case_ids) before the forward pass")
        sums = attention_dilution_sums(event.attn, event.token_kind, scans=len(self._case_ids))
        key = (int(event.stage), int(event.block))
        for case, s in zip(self._case_ids, sums.cpu()):
            prev = self._cells[case].get(key)
            self._cells[case][key] = s if prev is None else prev + s

    @property
    def case_ids(self) -> list[str]:
        return list(self._order)

    def results(self) -> dict[str, dict[int, StageDilution]]:
        """case id -> stage -> StageDilution (stages in increasing order)."""
        out: dict[str, dict[int, StageDilution]] = {}
        for case in self._order:
            by_stage: dict[int, list[torch.Tensor]] = defaultdict(list)
            for (stage, _block), s in sorted(self._cells[case].items()):
                by_stage[stage].append(s)
            out[case] = {stage: reduce_cells(torch.cat(v).numpy()) for stage, v in sorted(by_stage.items())}
        return out
