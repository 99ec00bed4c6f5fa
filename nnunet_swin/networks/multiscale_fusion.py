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

Speed: depthwise convolutions are linear, so ``sum_i w_i DWConv_{k_i}(x)`` is one depthwise convolution whose kernel is
``sum_i w_i k_i`` (each kernel zero-padded to the largest size) and whose bias is ``sum_i w_i b_i``. The forward builds
that kernel (a few thousand numbers) and runs one convolution instead of ``len(kernels)``, on the token map's own
channels-last layout; gradients still reach every branch's weights and the fusion weights through the kernel sum. The
parameters stay one ``Conv3d`` per branch, so checkpoints and the switches are unchanged.

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

    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The one depthwise kernel ``(C, 1, k, k, k)`` and bias ``(C,)`` equal to the weighted sum of the branches."""
        w = self.normalised_weights()
        size = max(self.kernels)
        kernel = sum(w[i] * F.pad(b.weight, [(size - k) // 2] * 6) for i, (k, b) in enumerate(zip(self.kernels,
                                                                                                   self.branches)))
        bias = sum(w[i] * b.bias for i, b in enumerate(self.branches))
        return kernel, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 4, 1, 2, 3)  # a channels-first view of the channels-last map (no copy)
        kernel, bias = self.fused_kernel()
        fused = F.conv3d(y, kernel, bias, padding=max(self.kernels) // 2, groups=y.shape[1])
        return x + self.proj(fused.permute(0, 2, 3, 4, 1))
