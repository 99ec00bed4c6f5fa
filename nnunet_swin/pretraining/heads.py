"""Pretraining heads on top of ``SwinEncoder``: projection heads (DINO/iBOT), the linear reconstruction decoder
(SMIT's MIP) and SMART's semantic class attention. None of them is part of the fine-tuned network.

Shapes: tokens are ``(B, N, C)`` (N tokens of one stage, flattened in the encoder's (D, H, W) order); maps are
``(B, C, D, H, W)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """DINO/iBOT projection head: MLP ``C -> hidden -> hidden -> bottleneck`` (GELU), L2-normalise, then a
    weight-normalised linear ``bottleneck -> out_dim`` without bias whose weight norm is fixed to 1
    (SMIT: 384 -> 2048 -> 2048 -> 256, 8192 prototypes). Works on ``(..., C)``.

    Initialisation as DINO/SMIT: the MLP's linears get ``trunc_normal(std=0.02)`` and zero biases; the prototype
    layer (``last_layer``) is created after that init in DINO and SMIT, so it keeps PyTorch's default ``nn.Linear``
    init (Kaiming-uniform, about ``1 / sqrt(3 * bottleneck)`` std: 0.07 at 64, 0.036 at 256).

    ``forward(x)`` returns the logits; ``forward(x, with_bottleneck=True)`` returns ``(logits, z)`` with ``z`` the
    L2-normalised bottleneck (what the collapse monitor's cross-sample cosine reads)."""

    def __init__(self, in_dim: int, out_dim: int = 8192, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # weight normalisation by hand (direction v, fixed gain 1): state keys last_layer.weight (out, bottleneck)
        self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)   # PyTorch's default init (DINO, SMIT)

    def forward(self, x: torch.Tensor, with_bottleneck: bool = False):
        z = F.normalize(self.mlp(x), dim=-1, eps=1e-12)
        w = F.normalize(self.last_layer.weight, dim=1, eps=1e-12)
        logits = F.linear(z, w)
        return (logits, z) if with_bottleneck else logits


class ReconstructionDecoder(nn.Module):
    """SMIT's light MIP decoder: a 1x1x1 convolution from the bottleneck ``(B, C, d, h, w)`` (stride ``s``) to
    ``s^3 * out_channels`` channels, pixel-shuffled back to ``(B, out_channels, d*s, h*s, w*s)``."""

    def __init__(self, in_channels: int, stride: int, out_channels: int = 1) -> None:
        super().__init__()
        self.stride, self.out_channels = stride, out_channels
        self.proj = nn.Conv3d(in_channels, stride ** 3 * out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, d, h, w = x.shape
        s, c = self.stride, self.out_channels
        y = self.proj(x).view(b, c, s, s, s, d, h, w)
        return y.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c, d * s, h * s, w * s)


class ClassAttention(nn.Module):
    """SMART's semantic class attention, read as CaiT's class-attention block (Touvron et al. 2021).

    A learned class query ``(1, 1, C)`` attends (multi-head) over the last stage's tokens; the class token is
    ``cls + proj(attn @ v)`` followed by ``cls + mlp(norm(cls))``. Keys are the stage tokens only (CaiT also keys the
    class token itself; leaving it out makes the map a distribution over image tokens), padding tokens are excluded
    with ``key_valid``. ``forward(tokens (B, N, C), key_valid (B, N) bool | None)`` returns the class token
    ``(B, C)`` and the attention ``(B, heads, N)`` (rows sum to 1 over valid tokens).

    ``norm_query`` (default True): the class token is layer-normalised before the query projection, as CaiT's
    class-attention block does (its ``norm1`` covers the class token). Without it the query is the raw class-token
    parameter (init std 0.02), ``q.k`` is about 0 and the softmax stays flat (normalised entropy 1.0000 for a whole
    run in this project's measurements), so attention-guided masking is random.
    [unverified: SMART's module is described only as "semantic class attention"; this reading is a choice.]
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, norm_query: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"class attention: dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.norm_tokens = nn.LayerNorm(dim, eps=1e-6)
        self.norm_query = nn.LayerNorm(dim, eps=1e-6) if norm_query else None
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, tokens: torch.Tensor, key_valid: torch.Tensor | None = None):
        b, n, c = tokens.shape
        h = self.num_heads
        x = self.norm_tokens(tokens)
        cls = self.cls_token.expand(b, -1, -1)
        q = self.q(self.norm_query(cls) if self.norm_query is not None else cls).view(b, 1, h, c // h).transpose(1, 2)                      # (B, h, 1, c/h)
        k, v = self.kv(x).view(b, n, 2, h, c // h).permute(2, 0, 3, 1, 4)          # (B, h, N, c/h) each
        logits = (q * (c // h) ** -0.5) @ k.transpose(-2, -1)                      # (B, h, 1, N)
        if key_valid is not None:
            logits = logits.masked_fill(~key_valid.view(b, 1, 1, n), torch.finfo(logits.dtype).min)
        attn = logits.float().softmax(dim=-1).to(v.dtype)
        out = (attn @ v).transpose(1, 2).reshape(b, 1, c)
        cls = cls + self.proj(out)
        cls = cls + self.mlp(self.norm_mlp(cls))
        return cls[:, 0], attn[:, :, 0]
