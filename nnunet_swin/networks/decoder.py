"""The Swin UNETR convolutional decoder (SMIT fine-tuned with the same blocks), on channels-first maps.

Submodules keep MONAI's names (``encoder1..4``, ``encoder10``, ``decoder5..1``, ``out``; inner ``layer.conv1.conv``
etc.), so the decoder part of a MONAI ``SwinUNETR`` or SMIT ``SMIT_3D_Seg`` state dict maps by prefix alone.

Data flow for the raw input ``x (B, C_in, D, H, W)`` and the encoder's maps ``f[0..4]`` (strides 2..32):
``enc0 = encoder1(x)``, ``enc1..3 = encoder2..4(f[0..2])``, ``dec4 = encoder10(f[4])``, ``dec3 = decoder5(dec4, f[3])``,
then ``decoder4..1`` upsample by 2 and fuse ``enc3..enc0``; ``out`` is a 1x1x1 convolution to the class logits.
"""
from __future__ import annotations

from torch import nn
import torch
import torch.nn.functional as F


class InstanceNorm(nn.Module):
    """Non-affine instance norm, exactly what MONAI's ``InstanceNorm3d(affine=False)`` computes (no parameters or
    buffers): ``F.instance_norm`` is a batch norm of the map reshaped to ``(1, B * C, *spatial)``, and ``flat`` runs that
    same call. ``forward`` views the result back to ``(B, C, *spatial)``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels, self.eps = channels, eps

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised map as ``(1, B * C, *spatial)``: the batch norm's own output, not a view of one, so in-place
        operations on it do not make autograd copy the whole map in the backward pass (as they do on a view)."""
        b, c = x.shape[:2]
        return F.batch_norm(x.reshape(1, b * c, *x.shape[2:]), None, None, training=True, eps=self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flat(x).view(x.shape)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return InstanceNorm(channels)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    raise ValueError(f"unknown decoder_norm {kind!r}; use 'instance' or 'batch'")


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1x1 convolution with ``weight (C_out, C_in, 1, 1, 1)`` (or ``(C_out, C_in)``) as one batched matrix product
    ``(C_out, C_in) @ (C_in, voxels)`` per sample: the same sums, and on CPU markedly faster than the convolution
    kernel, forward and backward (see ``benchmarks/bench_swin_step.py``).

    Under autocast the operands are first cast to the autocast dtype, as autocast casts a convolution's or ``bmm``'s
    (the explicit products inside write into preallocated outputs, which autocast does not cast for)."""
    weight = weight.reshape(weight.shape[0], x.shape[1])
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        x, weight, bias = (t if t is None or t.dtype == torch.float64 else t.to(dtype) for t in (x, weight, bias))
    return _Pointwise.apply(x, weight, bias)


class _Pointwise(torch.autograd.Function):
    """``pointwise`` with the backward written out: the same two matrix products autograd would run, but the input
    gradient is a fresh ``(B, C_in, *spatial)`` tensor rather than a reshaped view of one. Autograd can then sum
    the gradients of a map with several consumers (the concatenated skip feeds a 3x3x3 and a 1x1x1 convolution)
    in place instead of into a new full-resolution buffer."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        b, cin = x.shape[:2]
        cout = weight.shape[0]
        y = x.new_empty(b, cout, *x.shape[2:])
        torch.bmm(weight.expand(b, cout, cin), x.reshape(b, cin, -1), out=y.view(b, cout, -1))
        if bias is not None:
            y.view(b, cout, -1).add_(bias.view(1, cout, 1))
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        b, cin = x.shape[:2]
        cout = weight.shape[0]
        g = grad_y.reshape(b, cout, -1)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x, memory_format=torch.contiguous_format)
            torch.bmm(weight.t().expand(b, cin, cout), g, out=grad_x.view(b, cin, -1))
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(g, x.reshape(b, cin, -1).transpose(1, 2)).sum(0)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum((0, 2))
        return grad_x, grad_w, grad_b


class ConvUnit(nn.Module):
    """A bias-free 3D convolution kept under ``.conv`` (MONAI's ``Convolution`` key layout)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv.kernel_size == (1, 1, 1):
            return pointwise(x, self.conv.weight)
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

    @staticmethod
    def _normalise(norm: nn.Module, y: torch.Tensor) -> torch.Tensor:
        """``norm(y)`` as a tensor that is not an autograd view (instance norm: in its flat shape)."""
        return norm.flat(y) if isinstance(norm, InstanceNorm) else norm(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # MONAI's arithmetic and kernels; the in-place LeakyReLUs and the in-place residual addition act on the norms'
        # own outputs (whose backward does not need them), and the results are viewed back to (B, C, ...) afterwards.
        y = self.conv1(x)
        shape = y.shape
        y = self.lrelu(self._normalise(self.norm1, y)).view(shape)
        y = self._normalise(self.norm2, self.conv2(y))
        residual = self._normalise(self.norm3, self.conv3(x)) if self.downsample else x
        return self.lrelu(y.add_(residual.reshape(y.shape))).view(shape)


class SkipBlock(nn.Module):
    """A residual block under ``.layer`` (MONAI ``UnetrBasicBlock`` layout)."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.layer = ResidualBlock(cin, cout, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class TransposedConv(nn.Module):
    """2x upsampling by a transposed convolution with kernel = stride = 2 (MONAI's ``transp_conv.conv`` key), computed
    as what it is: one matrix ``(C_out * 8, C_in)`` maps each input voxel to its 2x2x2 output block, then the blocks
    are interleaved. The same sums as ``ConvTranspose3d``, faster on CPU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose3d(cin, cout, kernel_size=2, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, cin, d, h, w = x.shape
        cout = self.conv.out_channels
        y = pointwise(x, self.conv.weight.reshape(cin, cout * 8).t()).view(b, cout, 2, 2, 2, d, h, w)
        return y.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, cout, 2 * d, 2 * h, 2 * w)


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
        return pointwise(x, self.conv.conv.weight, self.conv.conv.bias)


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
