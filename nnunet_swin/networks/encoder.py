"""One 3D Swin encoder; SMIT and Swin UNETR are configurations of it.

``SwinEncoder(in_channels, **backbone_kwargs)`` takes ``(B, C, D, H, W)`` in its own axis order, which inside
``SwinSegmentationNetwork`` is the public checkpoints' (X, Y, Z) (the network permutes nnU-Net's (Z, Y, X) in and
out). It returns five channels-first feature maps, strides 2, 4, 8, 16 and 32 of the input:

- ``skip_taps="monai"`` (Swin UNETR): patch embedding, then each stage's merged output, each through a non-affine
  LayerNorm (eps 1e-5); the last one (stride 32) is the bottleneck.
- ``skip_taps="smit"``: each stage's tokens before merging through a learned LayerNorm ``skip_norms[i]`` (SMIT's
  ``norm{i}``), then the raw (un-normalised) merged output of the last stage as the bottleneck.

Switches the public weights depend on (see ``presets.py`` for their meaning): ``merge_order``, ``window_reverse``,
``shrink_window``, ``rel_index_slice``, ``patch_norm``, ``qkv_bias``, ``use_v2`` (Swin UNETR-V2: a residual
convolution block, MONAI's ``UnetrBasicBlock(res_block=True, norm instance)``, before each stage's Swin blocks, as
``layers.{i}.residual``; the stage's skip outputs are taken as in MONAI, the patch-embedding skip before it).

Blocks for forward hooks: ``iter_blocks()`` yields ``(stage, block_index, module)``; each module's forward output is
the block's token map ``(B, D, H, W, C)``, channels last, in the encoder's axis order, at stride ``2 ** (stage + 1)``.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from nnunet_swin.geometry.tokens import effective_window, padded_size
from nnunet_swin.networks import cpu_kernels
from nnunet_swin.networks import windows as win
from nnunet_swin.networks.attention import AttentionEvent, ProbeCallback, WindowAttention
from nnunet_swin.networks.cpu_kernels import use_cpu_kernels
from nnunet_swin.networks.decoder import SkipBlock
from nnunet_swin.networks.multiscale_fusion import MultiScaleFusion
from nnunet_swin.networks.token_kinds import TOKEN_REAL, embedded_kinds, merged_kinds, window_padded_kinds

# (d, h, w) offsets of the 2x2x2 neighbours, in the order each implementation concatenates them.
MERGE_ORDERS: dict[str, tuple[tuple[int, int, int], ...]] = {
    # MONAI <= 1.4 `merging`: slots 5, 6 repeat slots 2, 3; (1,1,0) and (0,1,1) are never used.
    "legacy": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 0), (0, 0, 1), (1, 1, 1)),
    "monai16": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)),
    "v2": ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)),
    "smit": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1)),
}


def _triple(v) -> tuple[int, int, int]:
    if isinstance(v, int):
        return (v, v, v)
    v = tuple(int(i) for i in v)
    if len(v) != 3:
        raise ValueError(f"expected 3 values, got {v}")
    return v


class DropPath(nn.Module):
    """Stochastic depth: drops the residual branch per sample with probability ``p`` in training, rescales by 1/(1-p)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """``fc1 -> GELU (exact) -> fc2`` on the last axis."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class PatchEmbedding(nn.Module):
    """``(B, C_in, D, H, W)`` -> ``(B, D/p, H/p, W/p, E)``: strided convolution, optional LayerNorm (SMIT)."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: tuple[int, int, int], norm: bool) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_cpu_kernels(x):
            x = cpu_kernels.conv3d(x, self.proj.weight, self.proj.bias, stride=self.proj.stride)
        else:
            x = self.proj(x)
        x = x.permute(0, 2, 3, 4, 1).contiguous()  # every later op then sees dense channels-last tokens
        return self.norm(x) if self.norm is not None else x


class PatchMerging(nn.Module):
    """``(B, D, H, W, C)`` -> ``(B, ceil(D/2), ceil(H/2), ceil(W/2), 2C)``: concatenate the 2x2x2 neighbours in the
    configured order (odd sides right-padded with zeros), LayerNorm(8C), Linear(8C, 2C, no bias)."""

    def __init__(self, dim: int, order: str) -> None:
        super().__init__()
        if order not in MERGE_ORDERS:
            raise ValueError(f"unknown merge_order {order!r}; choose one of {', '.join(MERGE_ORDERS)}")
        self.offsets = MERGE_ORDERS[order]
        self.norm = nn.LayerNorm(8 * dim)
        self.reduction = nn.Linear(8 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, h, w = x.shape[1:4]
        if d % 2 or h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2, 0, d % 2))
        x = torch.cat([x[:, i::2, j::2, k::2, :] for i, j, k in self.offsets], dim=-1)
        return self.reduction(self.norm(x))


class StageGeometry:
    """What every block of one stage shares for one forward pass: window, shift, padding, masks, token kinds."""

    def __init__(self, size: tuple[int, ...], window: tuple[int, ...], shrink: bool, kinds: torch.Tensor | None,
                 device: torch.device, need_kinds: bool) -> None:
        self.size = tuple(size)
        self.window, self.shift = effective_window(self.size, window, shrink)
        self.padded = padded_size(self.size, self.window)
        self.needs_pad = self.padded != self.size
        self.shifted = any(s > 0 for s in self.shift)
        self.shift_mask = (win.shift_mask(self.padded, self.window, self.shift, device=device)
                           if self.shifted else None)
        # kinds: (B, D, H, W) int8, real or input padding; the window padding is marked as such.
        self.kinds_padded = window_padded_kinds(kinds, self.window) if need_kinds else None

    def window_kinds(self, shifted: bool) -> torch.Tensor | None:
        """Token kinds ``(B * nW, N)`` int8 in the block's (rolled) frame, or None when not tracked."""
        if self.kinds_padded is None:
            return None
        k = self.kinds_padded
        if shifted:
            k = torch.roll(k, shifts=tuple(-s for s in self.shift), dims=(1, 2, 3))
        return win.partition(k, self.window)


class SwinBlock(nn.Module):
    """Pre-norm Swin block on ``(B, D, H, W, C)``: x + attn(norm1(x)) in (shifted) windows, then x + mlp(norm2(x)).

    The map is padded after ``norm1`` with zero tokens up to a window multiple (they take part in attention as keys
    unless ``exclude_padding_keys``), rolled by ``-shift`` for odd blocks, and cropped back after the window reverse.
    """

    def __init__(self, dim: int, num_heads: int, window_size: tuple[int, int, int], shifted: bool, mlp_ratio: float,
                 qkv_bias: bool, drop_path: float, rel_index_slice: bool, window_reverse: str, stage: int,
                 index: int, adaptive_attention: bool = False) -> None:
        super().__init__()
        self.stage, self.index, self.shifted = stage, index, shifted
        self.window_reverse = window_reverse
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, qkv_bias=qkv_bias, rel_index_slice=rel_index_slice,
                                    adaptive=adaptive_attention)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.exclude_padding_keys = False
        self.probe: ProbeCallback | None = None

    def forward(self, x: torch.Tensor, geometry: StageGeometry) -> torch.Tensor:
        x = x + self.drop_path(self._attention(x, geometry))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _attention(self, x: torch.Tensor, g: StageGeometry) -> torch.Tensor:
        b, d, h, w, c = x.shape
        y = self.norm1(x)
        if g.needs_pad:
            y = F.pad(y, (0, 0, 0, g.padded[2] - w, 0, g.padded[1] - h, 0, g.padded[0] - d))
        shifted = self.shifted and g.shifted
        if shifted:
            y = torch.roll(y, shifts=tuple(-s for s in g.shift), dims=(1, 2, 3))
        kinds = g.window_kinds(shifted) if (self.probe is not None or self.exclude_padding_keys) else None
        key_padding = (kinds != TOKEN_REAL) if (self.exclude_padding_keys and kinds is not None) else None
        probe = None
        if self.probe is not None:
            callback, window = self.probe, tuple(g.window)

            def probe(attn: torch.Tensor) -> None:
                callback(AttentionEvent(stage=self.stage, block=self.index, shifted=shifted, window=window,
                                        attn=attn, token_kind=kinds))
        y = self.attn(win.partition(y, g.window), g.window, g.shift_mask if shifted else None, key_padding, probe)
        y = win.reverse(y, g.window, (b, *g.padded), self.window_reverse)
        if shifted:
            y = torch.roll(y, shifts=tuple(g.shift), dims=(1, 2, 3))
        if g.needs_pad:
            y = y[:, :d, :h, :w, :]
        return y


class SwinStage(nn.Module):
    """``depth`` Swin blocks (even index unshifted, odd shifted) at one resolution, then a patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: tuple[int, int, int], mlp_ratio: float,
                 qkv_bias: bool, drop_paths: list[float], rel_index_slice: bool, window_reverse: str,
                 merge_order: str, stage: int, adaptive_attention: bool = False,
                 fusion: MultiScaleFusion | None = None, use_v2: bool = False) -> None:
        super().__init__()
        self.window_size = window_size
        # Swin UNETR-V2's residual convolution block before the Swin blocks (MONAI ``layers{i}c``), or None
        self.residual = SkipBlock(dim, dim, "instance") if use_v2 else None
        self.fusion = fusion  # the spine variant's multi-scale convolution fusion before the blocks, or None
        self.blocks = nn.ModuleList([
            SwinBlock(dim, num_heads, window_size, shifted=bool(i % 2), mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      drop_path=drop_paths[i], rel_index_slice=rel_index_slice, window_reverse=window_reverse,
                      stage=stage, index=i, adaptive_attention=adaptive_attention)
            for i in range(depth)])
        self.downsample = PatchMerging(dim, merge_order)


class SwinEncoder(nn.Module):
    """3D Swin encoder ``(B, C_in, D, H, W)`` -> 5 channels-first maps (see module docstring).

    ``forward(x, padding_mask=None)``: ``padding_mask`` ``(B, D, H, W)`` or ``(B, 1, D, H, W)`` bool, True on real
    image voxels. It feeds the token kinds of probe events and ``exclude_padding_keys``; it is propagated through the
    patch embedding and every merge by max-pooling (a token is real if any voxel/constituent is real).
    """

    def __init__(self, in_channels: int, *, embed_dim: int = 48, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24),
                 window_size=7, patch_size=2, mlp_ratio: float = 4.0, qkv_bias: bool = True, patch_norm: bool = False,
                 drop_path_rate: float = 0.0, merge_order: str = "monai16", window_reverse: str = "inverse",
                 shrink_window: bool = True, rel_index_slice: bool = True, skip_taps: str = "monai",
                 exclude_padding_keys: bool = False, gradient_checkpointing: bool = False,
                 adaptive_attention: bool = False, multiscale_fusion: bool = False, fusion_kernels=(3, 5, 7),
                 fusion_weights: str = "bifpn", family: str | None = None, use_v2: bool = False) -> None:
        super().__init__()
        if skip_taps not in ("monai", "smit"):
            raise ValueError(f"unknown skip_taps {skip_taps!r}; use 'monai' or 'smit'")
        if window_reverse not in ("inverse", "smit"):
            raise ValueError(f"unknown window_reverse {window_reverse!r}; use 'inverse' or 'smit'")
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads need one entry per stage")
        self.in_channels = in_channels
        self.family = family  # the preset's encoder family (which public checkpoints fit); None: not declared
        self.embed_dim = embed_dim
        self.depths, self.num_heads = tuple(depths), tuple(num_heads)
        self.window_size, self.patch_size = _triple(window_size), _triple(patch_size)
        self.shrink_window = shrink_window
        self.skip_taps = skip_taps
        self.merge_order, self.use_v2 = merge_order, bool(use_v2)
        self.gradient_checkpointing = gradient_checkpointing
        self.patch_embed = PatchEmbedding(in_channels, embed_dim, self.patch_size, patch_norm)
        n_blocks = sum(depths)
        rates = [drop_path_rate * i / (n_blocks - 1) if n_blocks > 1 else 0.0 for i in range(n_blocks)]
        self.layers = nn.ModuleList()
        start = 0
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            fusion = (MultiScaleFusion(embed_dim * 2 ** i, fusion_kernels, fusion_weights) if multiscale_fusion
                      else None)
            self.layers.append(SwinStage(embed_dim * 2 ** i, depth, heads, self.window_size, mlp_ratio, qkv_bias,
                                         rates[start:start + depth], rel_index_slice, window_reverse, merge_order, i,
                                         adaptive_attention, fusion, self.use_v2))
            start += depth
        self.skip_norms = (nn.ModuleList([nn.LayerNorm(embed_dim * 2 ** i) for i in range(len(depths))])
                           if skip_taps == "smit" else None)
        self.exclude_padding_keys = exclude_padding_keys

    @property
    def exclude_padding_keys(self) -> bool:
        return self._exclude_padding_keys

    @exclude_padding_keys.setter
    def exclude_padding_keys(self, value: bool) -> None:
        self._exclude_padding_keys = bool(value)
        for _, _, blk in self.iter_blocks():
            blk.exclude_padding_keys = bool(value)

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters exempt from weight decay (timm's convention): every 1-D parameter (biases, the
        LayerNorm scales and shifts) and the relative-position bias tables."""
        return {name for name, p in self.named_parameters()
                if p.ndim <= 1 or name.endswith("relative_position_bias_table")}

    @property
    def channels(self) -> list[int]:
        """Channels of the five outputs: E, 2E, 4E, 8E, 16E (for 4 stages)."""
        n = len(self.depths)
        return [self.embed_dim * 2 ** i for i in range(n)] + [self.embed_dim * 2 ** n]

    def iter_blocks(self) -> Iterator[tuple[int, int, SwinBlock]]:
        """``(stage, block_index, block)`` for every transformer block, stage-major. A block's forward output is its
        token map ``(B, D, H, W, C)`` (channels last, encoder axis order, stride ``2 ** (stage + 1)``)."""
        for s, layer in enumerate(self.layers):
            for j, blk in enumerate(layer.blocks):
                yield s, j, blk

    @contextlib.contextmanager
    def attention_probe(self, callback: ProbeCallback):
        """While active, every block runs explicit-softmax attention and calls ``callback(AttentionEvent)``."""
        blocks = [blk for _, _, blk in self.iter_blocks()]
        previous = [blk.probe for blk in blocks]
        for blk in blocks:
            blk.probe = callback
        try:
            yield self
        finally:
            for blk, p in zip(blocks, previous):
                blk.probe = p

    def _probing(self) -> bool:
        return any(blk.probe is not None for _, _, blk in self.iter_blocks())

    @staticmethod
    def _layer_norm(x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:])

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        need_kinds = self._probing() or self.exclude_padding_keys
        kinds = None
        if need_kinds:
            kinds = self._initial_kinds(x, padding_mask)
        t = self.patch_embed(x)  # (B, D, H, W, E)
        outs: list[torch.Tensor] = []
        if self.skip_taps == "monai":
            outs.append(self._layer_norm(t))
        for i, layer in enumerate(self.layers):
            if layer.residual is not None:
                t = layer.residual(t.permute(0, 4, 1, 2, 3).contiguous()).permute(0, 2, 3, 4, 1).contiguous()
            if layer.fusion is not None:
                t = layer.fusion(t)
            geometry = StageGeometry(tuple(t.shape[1:4]), self.window_size, self.shrink_window, kinds, t.device,
                                     need_kinds)
            for blk in layer.blocks:
                if self.gradient_checkpointing and torch.is_grad_enabled():
                    t = checkpoint(blk, t, geometry, use_reentrant=False)
                else:
                    t = blk(t, geometry)
            if self.skip_taps == "smit":
                outs.append(self.skip_norms[i](t))
            t = layer.downsample(t)
            if self.skip_taps == "monai" or i == len(self.layers) - 1:
                outs.append(self._layer_norm(t) if self.skip_taps == "monai" else t)
            if kinds is not None:
                kinds = merged_kinds(kinds)
        return [o.permute(0, 4, 1, 2, 3) for o in outs]

    def _initial_kinds(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Token kinds after the patch embedding ``(B, D/p, H/p, W/p)`` int8 (see ``token_kinds``)."""
        b = x.shape[0]
        if padding_mask is None:
            size = [s // p for s, p in zip(x.shape[2:], self.patch_size)]
            return torch.full((b, *size), TOKEN_REAL, dtype=torch.int8, device=x.device)
        m = padding_mask
        if m.ndim == 5:
            if m.shape[1] != 1:
                raise ValueError(f"padding_mask must be (B, D, H, W) or (B, 1, D, H, W), got {tuple(m.shape)}")
            m = m[:, 0]
        if tuple(m.shape) != (b, *x.shape[2:]):
            raise ValueError(f"padding_mask shape {tuple(m.shape)} does not match the input {tuple(x.shape)}")
        return embedded_kinds(m, self.patch_size)
