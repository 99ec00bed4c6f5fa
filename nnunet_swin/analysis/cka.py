"""Linear centred kernel alignment (CKA) with the minibatch estimator and the unbiased HSIC.

Paper appendix B, equations (8)-(10) (Kornblith et al. 2019; Nguyen, Raghu & Kornblith 2021; Song et al. 2012):

    HSIC_1(K, L) = [tr(K~L~) + (1'K~1)(1'L~1)/((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)),  K~ = K with diag 0
    CKA_mb       = mean_i HSIC_1(K_i, L_i) / sqrt(mean_i HSIC_1(K_i, K_i) * mean_i HSIC_1(L_i, L_i))

computed here in the equivalent U-centred form (HSIC_1 = <U(K), U(L)> / (n(n-3))), in float64. K = X X' for
activations X (n examples, d features) of one layer. Minibatches have one fixed size n >= 4; a short last batch
is dropped. A self-term that is not positive (constant or near-constant features) gives NaN, never a complex number.
"""
from __future__ import annotations

import numpy as np
import torch

from nnunet_swin.errors import UserError


def u_centre(gram: torch.Tensor) -> torch.Tensor:
    """U-centring of an (n, n) Gram matrix (Szekely & Rizzo 2014); zero diagonal. float64."""
    n = gram.shape[0]
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 examples per batch, got {n}")
    g = gram.double().clone()
    g.fill_diagonal_(0.0)
    row = g.sum(dim=0) / (n - 2)
    total = g.sum() / ((n - 1) * (n - 2))
    g = g - row[:, None] - row[None, :] + total
    g.fill_diagonal_(0.0)
    return g


def hsic1(gram_k: torch.Tensor, gram_l: torch.Tensor) -> float:
    """Unbiased HSIC (Song et al. 2012, paper eq. 10) of two (n, n) Gram matrices, float64."""
    n = gram_k.shape[0]
    return float((u_centre(gram_k) * u_centre(gram_l)).sum() / (n * (n - 3)))


def _flat64(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).double()


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Full-batch linear CKA with the unbiased HSIC. x (n, ...), y (n, ...): one row per example."""
    x, y = _flat64(x), _flat64(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same number of examples, got {x.shape[0]} and {y.shape[0]}")
    k, l = x @ x.T, y @ y.T
    kl, kk, ll = hsic1(k, l), hsic1(k, k), hsic1(l, l)
    return kl / np.sqrt(kk * ll) if kk > 0 and ll > 0 else float("nan")


class MinibatchCKA:
    """Accumulates the layer x layer minibatch CKA between two models' activations.

    ``update(acts_a, acts_b)`` takes one minibatch: lists of per-layer activations, each (n, ...) with the same n
    (the fixed batch size). ``result()`` returns the (layers_a, layers_b) matrix. Batches of another size are
    refused, so callers drop the short last batch before calling.
    """

    def __init__(self, batch_size: int) -> None:
        if batch_size < 4:
            raise UserError(f"CKA batch size must be at least 4 (the unbiased HSIC needs n >= 4), got {batch_size}")
        self.batch_size = batch_size
        self.batches = 0
        self._cross: torch.Tensor | None = None
        self._self_a: torch.Tensor | None = None
        self._self_b: torch.Tensor | None = None
        self._raw_a = self._raw_b = 0.0   # sum of squared uncentred Gram entries: the scale for "is it zero?"

    def _centred(self, acts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        rows, raw = [], []
        for a in acts:
            a = _flat64(a)
            if a.shape[0] != self.batch_size:
                raise ValueError(f"expected batches of {self.batch_size} examples, got {a.shape[0]}")
            gram = a @ a.T
            rows.append(u_centre(gram).reshape(-1))
            raw.append((gram * gram).sum())
        return torch.stack(rows), torch.stack(raw)                 # (layers, n*n), (layers,)

    def update(self, acts_a: list[torch.Tensor], acts_b: list[torch.Tensor]) -> None:
        (ua, raw_a), (ub, raw_b) = self._centred(acts_a), self._centred(acts_b)
        scale = 1.0 / (self.batch_size * (self.batch_size - 3))
        self._raw_a = self._raw_a + raw_a * scale
        self._raw_b = self._raw_b + raw_b * scale
        cross = (ua @ ub.T) * scale
        sa, sb = (ua * ua).sum(dim=1) * scale, (ub * ub).sum(dim=1) * scale
        if self._cross is None:
            self._cross, self._self_a, self._self_b = cross, sa, sb
        else:
            self._cross += cross
            self._self_a += sa
            self._self_b += sb
        self.batches += 1

    def result(self) -> np.ndarray:
        """(layers_a, layers_b) float64 CKA; NaN where a self-term is not positive (relative to rounding)."""
        if self._cross is None:
            raise UserError("no complete CKA batch was seen; give at least as many images as the batch size")
        sa, sb = self._self_a.numpy(), self._self_b.numpy()
        denom = np.sqrt(np.clip(np.outer(sa, sb), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._cross.numpy() / denom
        zero_a = sa <= 1e-12 * np.asarray(self._raw_a)
        zero_b = sb <= 1e-12 * np.asarray(self._raw_b)
        out[zero_a[:, None] | zero_b[None, :]] = np.nan
        return out


def minibatch_cka(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Minibatch CKA of one pair of activation sets over consecutive batches (short last batch dropped)."""
    n = x.shape[0]
    if n < batch_size:
        raise UserError(f"{n} examples are fewer than one CKA batch of {batch_size}; lower --batch-size or add images")
    meter = MinibatchCKA(batch_size)
    for start in range(0, n - batch_size + 1, batch_size):
        meter.update([x[start:start + batch_size]], [y[start:start + batch_size]])
    return float(meter.result()[0, 0])
