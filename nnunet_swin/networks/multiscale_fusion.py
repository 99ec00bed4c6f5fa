"""Multi-scale convolution fusion for the spine variant (arXiv 2503.12853): parallel kernels, learned fused weights.

The paper says parallel convolutions of several kernel sizes give maps F_i that are fused as ``F = sum_i w_i F_i``
with trainable w_i; it gives no kernel sizes, weight normalisation or placement. Our choices (each a switch in
``arch_kwargs``; [unverified] against the paper):

- placement: before the blocks of every Swin stage, on the token map (like the residual convolution block MONAI's
  ``SwinUNETR(use_v2=True)`` puts there), so every resolution gets it;
- branches: depthwise 3D convolutions with kernels ``fusion_kernels`` (default 3, 5, 7: receptive fields of 3-7
  tokens, i.e. 6-14 mm at stage 0 and 1 mm voxels), then one shared pointwise projection;
- weights: BiFPN's fast normalised fusion ``w = relu(w_raw) / (sum relu(w_raw) + 1e-4)`` (``fusion_weights="bifpn"``,
  default) or a softmax over ``w_raw`` (``"softmax"``);
- identity at initialisation: the module is residual, ``x + proj(F)``, with the projection initialised to zero, so a
  pretrained encoder computes exactly what it computed without the module until training moves it.

Token maps are channels-last ``(B, D, H, W, C)`` in the encoder's axis order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FUSION_WEIGHTS = ("bifpn", "softmax")


class MultiScaleFusion(nn.Module):
    """``x (B, D, H, W, C) -> x + proj(sum_i w_i DWConv_{k_i}(x))``; see the module docstring."""

    def __init__(self, dim: int, kernels=(3, 5, 7), weights: str = "bifpn") -> None:
        super().__init__()
        if weights not in FUSION_WEIGHTS:
            raise ValueError(f"fusion_weights must be one of {FUSION_WEIGHTS}, got {weights!r}")
        kernels = tuple(int(k) for k in kernels)
        if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"fusion_kernels must be odd sizes >= 1, got {list(kernels)}")
        self.kernels, self.weights = kernels, weights
        self.branches = nn.ModuleList([nn.Conv3d(dim, dim, k, padding=k // 2, groups=dim) for k in kernels])
        self.fusion_weight = nn.Parameter(torch.ones(len(kernels)))
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def normalised_weights(self) -> torch.Tensor:
        """The fusion weights the branches get (non-negative, summing to about 1)."""
        if self.weights == "softmax":
            return torch.softmax(self.fusion_weight, dim=0)
        w = F.relu(self.fusion_weight)
        return w / (w.sum() + 1e-4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 4, 1, 2, 3)  # channels first for the convolutions
        w = self.normalised_weights()
        fused = sum(w[i] * branch(y) for i, branch in enumerate(self.branches))
        return x + self.proj(fused.permute(0, 2, 3, 4, 1))
