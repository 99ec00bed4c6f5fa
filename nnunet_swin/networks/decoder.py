"""The Swin UNETR convolutional decoder (SMIT fine-tuned with the same blocks), on channels-first maps.

Submodules keep MONAI's names (``encoder1..4``, ``encoder10``, ``decoder5..1``, ``out``; inner ``layer.conv1.conv``
etc.), so the decoder part of a MONAI ``SwinUNETR`` or SMIT ``SMIT_3D_Seg`` state dict maps by prefix alone.

Data flow for the raw input ``x (B, C_in, D, H, W)`` and the encoder's maps ``f[0..4]`` (strides 2..32):
``enc0 = encoder1(x)``, ``enc1..3 = encoder2..4(f[0..2])``, ``dec4 = encoder10(f[4])``, ``dec3 = decoder5(dec4, f[3])``,
then ``decoder4..1`` upsample by 2 and fuse ``enc3..enc0``; ``out`` is a 1x1x1 convolution to the class logits.

On CPU the blocks run the allocation-saving forms of ``cpu_kernels`` (same parameters, same sums); elsewhere the
plain layers.
"""
from __future__ import annotations

import torch
from torch import nn

from nnunet_swin.networks import cpu_kernels
from nnunet_swin.networks.cpu_kernels import use_cpu_kernels


def _norm(kind: str, channels: int) -> nn.Module:
    """Non-affine instance norm (MONAI's ``InstanceNorm3d(affine=False)``: no parameters or buffers) or batch norm."""
    if kind == "instance":
        return nn.InstanceNorm3d(channels)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    raise ValueError(f"unknown decoder_norm {kind!r}; use 'instance' or 'batch'")


class ConvUnit(nn.Module):
    """A bias-free 3D convolution kept under ``.conv`` (MONAI's ``Convolution`` key layout)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_cpu_kernels(x):
            if self.conv.kernel_size == (1, 1, 1):
                return cpu_kernels.pointwise(x, self.conv.weight)
            return cpu_kernels.conv3d(x, self.conv.weight, padding=self.conv.padding)
        return self.conv(x)


class ResidualBlock(nn.Module):
    """conv3-norm-LeakyReLU(0.01)-conv3-norm, plus the input (through conv1x1-norm when channels change), LeakyReLU."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.conv1 = ConvUnit(cin, cout, 3)
        self.conv2 = ConvUnit(cout, cout, 3)
        self.lrelu = nn.LeakyReLU(0.01, inplace=True)
        self.norm1, self.norm2 = _norm(norm, cout), _norm(norm, cout)
        self.downsample = cin != cout
        if self.downsample:
            self.conv3 = ConvUnit(cin, cout, 1)
            self.norm3 = _norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_cpu_kernels(x):
            return cpu_kernels.residual_block(x, self.conv1, self.norm1, self.conv2, self.norm2,
                                              self.conv3 if self.downsample else None,
                                              self.norm3 if self.downsample else None, self.lrelu.negative_slope)
        y = self.lrelu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        residual = self.norm3(self.conv3(x)) if self.downsample else x
        return self.lrelu(y + residual)


class SkipBlock(nn.Module):
    """A residual block under ``.layer`` (MONAI ``UnetrBasicBlock`` layout)."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.layer = ResidualBlock(cin, cout, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class TransposedConv(nn.Module):
    """2x upsampling by a transposed convolution with kernel = stride = 2 (MONAI's ``transp_conv.conv`` key)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose3d(cin, cout, kernel_size=2, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_cpu_kernels(x):
            return cpu_kernels.transposed_conv2(x, self.conv.weight)
        return self.conv(x)


class UpBlock(nn.Module):
    """2x transposed convolution, concatenation with the skip, residual block (MONAI ``UnetrUpBlock`` layout)."""

    def __init__(self, cin: int, cout: int, skip: int, norm: str) -> None:
        super().__init__()
        self.transp_conv = TransposedConv(cin, cout)
        self.conv_block = ResidualBlock(cout + skip, cout, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat((self.transp_conv(x), skip), dim=1))


class OutBlock(nn.Module):
    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.conv = nn.Module()
        self.conv.conv = nn.Conv3d(cin, classes, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_cpu_kernels(x):
            return cpu_kernels.pointwise(x, self.conv.conv.weight, self.conv.conv.bias)
        return self.conv.conv(x)


class UnetrDecoder(nn.Module):
    """Decoder for an input with ``in_channels`` and encoder maps of ``encoder_channels`` (5 entries, strides 2..32).

    ``features`` F sets the widths F, F, 2F, 4F, 8F, 16F of the levels (stride 1 to 32); with F = embed dim this is
    MONAI's ``SwinUNETR(feature_size=F)``. ``deep_supervision`` is always False (only the full-resolution logits).
    """

    def __init__(self, in_channels: int, num_classes: int, encoder_channels: list[int], features: int,
                 norm: str = "instance") -> None:
        super().__init__()
        f, e = features, encoder_channels
        self.deep_supervision = False
        self.encoder1 = SkipBlock(in_channels, f, norm)
        self.encoder2 = SkipBlock(e[0], f, norm)
        self.encoder3 = SkipBlock(e[1], 2 * f, norm)
        self.encoder4 = SkipBlock(e[2], 4 * f, norm)
        self.encoder10 = SkipBlock(e[4], 16 * f, norm)
        self.decoder5 = UpBlock(16 * f, 8 * f, e[3], norm)
        self.decoder4 = UpBlock(8 * f, 4 * f, 4 * f, norm)
        self.decoder3 = UpBlock(4 * f, 2 * f, 2 * f, norm)
        self.decoder2 = UpBlock(2 * f, f, f, norm)
        self.decoder1 = UpBlock(f, f, f, norm)
        self.out = OutBlock(f, num_classes)

    def forward(self, x: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        enc0 = self.encoder1(x)
        enc1 = self.encoder2(feats[0])
        enc2 = self.encoder3(feats[1])
        enc3 = self.encoder4(feats[2])
        dec = self.encoder10(feats[4])
        dec = self.decoder5(dec, feats[3])
        dec = self.decoder4(dec, enc3)
        dec = self.decoder3(dec, enc2)
        dec = self.decoder2(dec, enc1)
        dec = self.decoder1(dec, enc0)
        return self.out(dec)


# Resolution level (outputs at stride 2**level) of each top-level block of ``UnetrDecoder``.
DECODER_LEVELS = {"encoder1": 0, "encoder2": 1, "encoder3": 2, "encoder4": 3, "encoder10": 5, "decoder5": 4,
                  "decoder4": 3, "decoder3": 2, "decoder2": 1, "decoder1": 0, "out": 0}
