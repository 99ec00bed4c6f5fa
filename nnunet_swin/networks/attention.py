"""Windowed multi-head self-attention with a relative-position bias: fused by default, explicit when probed.

Tokens arrive already partitioned into windows, ``(B * nW, N, C)`` with ``N = w0 * w1 * w2`` (window-raster order,
first window axis slowest). Two numerically equivalent paths compute softmax(q k^T * scale + bias + mask) v:

- fused (default; CUDA, CPU inference, CPU kernels off): ``torch.nn.functional.scaled_dot_product_attention``
  with the relative-position bias, Swin's shift mask (-100 between tokens of different shifted regions) and,
  optionally, padding-key exclusion folded into one additive mask;
- explicit: the same sum through a plain softmax. It serves the probe (``SwinEncoder.attention_probe``), where a
  callback sees the post-softmax weights ``(B * nW, heads, N, N)`` of every window and reduces them on the fly;
- CPU training: the explicit arithmetic as one autograd function with a hand-written backward
  (``cpu_kernels.window_attention``, behind the CPU-kernel switch). SDPA cannot use its fused CPU kernel for a mask
  that needs a gradient (the learned bias) and falls back to an unfused kernel that is slower than this path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_swin.networks import cpu_kernels
from nnunet_swin.networks.cpu_kernels import use_cpu_kernels
from nnunet_swin.networks.windows import PADDING_KEY_PENALTY, add_masks_


@dataclass(frozen=True)
class AttentionEvent:
    """What a probe callback receives for one block (one call per block and forward pass).

    - ``stage``, ``block``: 0-based stage and block index inside the stage.
    - ``shifted``: whether the block rolled its feature map (shift > 0 along some axis).
    - ``window``: the effective window (tokens per axis) in the encoder's axis order, which inside
      ``SwinSegmentationNetwork`` is the checkpoints' (X, Y, Z).
    - ``attn``: ``(B * nW, heads, N, N)`` post-softmax weights the layer used (rows = queries, columns = keys), in the
      layer's dtype. Windows are in partition order over the padded (and, for shifted blocks, rolled) feature map:
      for sample b, window index ``b * nW + w`` with w in raster order over the window grid.
    - ``token_kind``: ``(B * nW, N)`` int8, same window and token order (``token_kinds``): 0 = real image token,
      1 = zero-padding added to the input (from the ``padding_mask`` given with it), 2 = Swin's own padding of the
      feature map to a window multiple.
    """
    stage: int
    block: int
    shifted: bool
    window: tuple[int, int, int]
    attn: torch.Tensor
    token_kind: torch.Tensor


ProbeCallback = Callable[[AttentionEvent], None]


def relative_position_index(window: tuple[int, int, int], table_window: tuple[int, int, int]) -> torch.Tensor:
    """Index ``(N, N)`` into a bias table built for ``table_window`` of every (query, key) pair of ``window``.

    The table has ``prod(2 * table_window - 1)`` rows; offsets are (d_q - d_k) per axis, raster-encoded with the first
    axis slowest. With ``window == table_window`` this is the standard Swin index.
    """
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing="ij")).flatten(1)  # (3, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (3, N, N)
    span = [2 * t - 1 for t in table_window]
    rel = rel + torch.tensor([t - 1 for t in table_window])[:, None, None]
    return rel[0] * (span[1] * span[2]) + rel[1] * span[2] + rel[2]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative-position bias.

    Parameters keep the public checkpoints' names: ``qkv`` (Linear C -> 3C), ``proj`` (Linear C -> C),
    ``relative_position_bias_table`` ``(prod(2 * window - 1), heads)``. ``relative_position_index`` is a derived,
    non-persistent buffer.

    A window smaller than the table's (MONAI shrinks windows on small feature maps) takes its bias either as the
    top-left ``N x N`` block of the full-window index (``rel_index_slice=True``, MONAI's behaviour, which the NVIDIA
    weights saw) or from the true relative offsets of the smaller window (``False``).
    """

    def __init__(self, dim: int, num_heads: int, window_size: tuple[int, int, int], qkv_bias: bool = True,
                 rel_index_slice: bool = True, adaptive: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"channels {dim} not divisible by heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.window_size = tuple(int(w) for w in window_size)
        self.rel_index_slice = rel_index_slice
        self.scale = (dim // num_heads) ** -0.5
        n_table = 1
        for w in self.window_size:
            n_table *= 2 * w - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(n_table, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02, a=-2.0, b=2.0)
        self.register_buffer("relative_position_index",
                             relative_position_index(self.window_size, self.window_size), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # adaptive attention (spine variant): one learned additive score per key token and head, from the key's own
        # features; zero-initialised, so the block computes the plain attention until training moves it
        self.key_score = nn.Linear(dim, num_heads) if adaptive else None
        if self.key_score is not None:
            nn.init.zeros_(self.key_score.weight)
            nn.init.zeros_(self.key_score.bias)
        self._index_cache: dict[tuple[int, ...], torch.Tensor] = {}

    def _index(self, window: tuple[int, ...]) -> torch.Tensor:
        if tuple(window) == self.window_size:
            return self.relative_position_index
        n = window[0] * window[1] * window[2]
        if self.rel_index_slice:
            return self.relative_position_index[:n, :n]
        key = tuple(window)
        idx = self._index_cache.get(key)
        if idx is None or idx.device != self.relative_position_index.device:
            idx = relative_position_index(key, self.window_size).to(self.relative_position_index.device)
            self._index_cache[key] = idx
        return idx

    def position_bias(self, window: tuple[int, ...]) -> torch.Tensor:
        """Relative-position bias ``(heads, N, N)`` for an effective window."""
        n = window[0] * window[1] * window[2]
        bias = self.relative_position_bias_table[self._index(window).reshape(-1)]
        return bias.reshape(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, window: tuple[int, ...], shift_mask: torch.Tensor | None = None,
                key_padding: torch.Tensor | None = None,
                probe: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        """``x (B * nW, N, C)`` -> ``(B * nW, N, C)``.

        ``shift_mask``: ``(nW, N, N)`` additive (0 / -100) or None. ``key_padding``: ``(B * nW, N)`` bool, True for
        keys to exclude, or None. ``probe``: called with the post-softmax weights; selects the explicit path.

        Path choice: the explicit softmax runs when probing; CPU autograd (with a trainable bias table) runs
        ``cpu_kernels.window_attention``, where PyTorch's SDPA could only use its unfused "math" kernel (a mask that
        needs a gradient rules out the CPU flash kernel). Everywhere else (CUDA, CPU inference, the CPU kernels
        switched off) SDPA runs, with bias, shift mask and padding penalty as its additive ``attn_mask``.
        """
        bw, n, c = x.shape
        h = self.num_heads
        bias = self.position_bias(window)  # (h, N, N)
        key_bias = self.key_score(x).transpose(1, 2) if self.key_score is not None else None  # (B * nW, h, N)
        if probe is None and torch.is_grad_enabled() and self.relative_position_bias_table.requires_grad \
                and use_cpu_kernels(x):
            return self.proj(cpu_kernels.window_attention(self.qkv(x), bias, shift_mask, key_padding, h, self.scale,
                                                          key_bias))
        qkv = self.qkv(x).reshape(bw, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B * nW, h, N, d)
        if probe is not None:
            out = self._explicit(q, k, v, bias, shift_mask, key_padding, probe, key_bias)
        else:
            out = self._fused(q, k, v, bias, shift_mask, key_padding, key_bias)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))

    def _additive_mask(self, bias, shift_mask, key_padding, bw, key_bias=None):
        """The full additive mask, broadcastable to ``(B * nW, h, N, N)`` (or ``(B, nW * h, N, N)`` when shifted)."""
        h, n = self.num_heads, bias.shape[-1]
        if key_bias is not None:  # per-window scores: the whole (B * nW, h, N, N) mask
            m = bias.unsqueeze(0) + key_bias.unsqueeze(2)
            if shift_mask is not None:
                nw = shift_mask.shape[0]
                m = (m.reshape(bw // nw, nw, h, n, n) + shift_mask.unsqueeze(1)).reshape(bw, h, n, n)
            if key_padding is not None:
                m = m + (key_padding.to(bias.dtype) * PADDING_KEY_PENALTY)[:, None, None, :]
            return m
        if key_padding is None:
            if shift_mask is None:
                return bias.unsqueeze(0)  # (1, h, N, N)
            nw = shift_mask.shape[0]
            return (bias.unsqueeze(0) + shift_mask.unsqueeze(1)).reshape(1, nw * h, n, n)
        m = bias.unsqueeze(0).expand(bw, h, n, n)
        if shift_mask is not None:
            nw = shift_mask.shape[0]
            m = (m.reshape(bw // nw, nw, h, n, n) + shift_mask.unsqueeze(1)).reshape(bw, h, n, n)
        penalty = key_padding.to(bias.dtype) * PADDING_KEY_PENALTY  # (B * nW, N)
        return m + penalty[:, None, None, :]

    def _fused(self, q, k, v, bias, shift_mask, key_padding, key_bias=None):
        bw, h, n, d = q.shape
        mask = self._additive_mask(bias, shift_mask, key_padding, bw, key_bias).to(q.dtype)
        if key_padding is None and key_bias is None and shift_mask is not None:
            nw = shift_mask.shape[0]
            shape = (bw // nw, nw * h, n, d)
            out = F.scaled_dot_product_attention(q.reshape(shape), k.reshape(shape), v.reshape(shape),
                                                 attn_mask=mask, scale=self.scale)
            return out.reshape(bw, h, n, d)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)

    def _explicit(self, q, k, v, bias, shift_mask, key_padding, probe, key_bias=None):
        bw, h, n, d = q.shape
        nw = shift_mask.shape[0] if shift_mask is not None else 1
        lead = (bw // nw, nw)  # (B, nW): the shift mask broadcasts over the batch
        q, k, v = (t.reshape(*lead, h, n, d) for t in (q, k, v))
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, nW, h, N, N)
        # The additions go in place into the product's own buffer (not a view of it: in-place writes through a view
        # make autograd copy the whole buffer back in the backward pass). Safe for autograd: matmul, add and softmax
        # never need this tensor for backward; the bias gradient is the batch sum autograd forms anyway.
        add_masks_(attn, bias, shift_mask, key_padding, key_bias)
        attn = attn.softmax(dim=-1)
        probe(attn.view(bw, h, n, n))
        return (attn @ v).view(bw, h, n, d)
