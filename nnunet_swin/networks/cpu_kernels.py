"""CPU-only speed kernels, behind one switch: ``use_cpu_kernels(tensor)``.

On CPU a third of a training step's time goes into the kernel handing out fresh pages for new full-size tensors, so
these forms compute the same sums as the plain PyTorch layers while allocating less (``benchmarks/bench_swin_step.py``
measures them against the plain layers and MONAI):

- ``window_attention``: softmax(q k^T * scale + bias + masks) v as one autograd function whose softmax and softmax
  gradient work in place (SDPA cannot use its fused CPU kernel for a mask that needs a gradient, the learned bias);
- ``pointwise`` / ``transposed_conv2``: 1x1x1 and 2x2x2/stride-2 transposed convolutions as batched matrix products;
- ``conv3d``: in inference, the decoder's 3x3x3 convolutions and the patch embedding through oneDNN whatever the
  batch size (PyTorch sends a batch-1 map with few channels x slices to its im2col kernel, and nnU-Net's predictor
  runs one window at a time);
- ``residual_block``: the decoder's residual block with in-place LeakyReLUs and residual addition on the norms' own
  outputs (instance norm as the flat batch norm it is, not a view of one).

Everywhere else (CUDA, where cuDNN and fused SDPA are the fast path, and whenever the switch is off) the network runs
the plain layers: ``nn.Conv3d``, ``nn.ConvTranspose3d``, ``nn.InstanceNorm3d``, ``F.scaled_dot_product_attention``.
Both paths hold the same parameters under the same names and agree to rounding (``tests/networks/test_cpu_kernels.py``).

The switch: on for CPU tensors unless the environment variable ``nnUNet_swin_cpu_kernels`` is false (``0``/``f``/
``false``/``no``/``off``, read once at import) or ``plain_layers()`` is active. It changes speed, never the model.
"""
from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_swin.networks.windows import add_masks_

ENV_SWITCH = "nnUNet_swin_cpu_kernels"
enabled: bool = os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "f", "false", "no", "off")


def use_cpu_kernels(tensor: torch.Tensor) -> bool:
    """Whether the CPU kernels run for this tensor: it is on the CPU and the switch is on."""
    return enabled and tensor.device.type == "cpu"


@contextlib.contextmanager
def plain_layers():
    """While active, the plain PyTorch layers run on CPU too (tests, benchmarks)."""
    global enabled
    previous, enabled = enabled, False
    try:
        yield
    finally:
        enabled = previous


# ------------------------------------------------------------------------------------------------ attention
def window_attention(qkv: torch.Tensor, bias: torch.Tensor, shift_mask: torch.Tensor | None,
                     key_padding: torch.Tensor | None, heads: int, scale: float,
                     key_bias: torch.Tensor | None = None) -> torch.Tensor:
    """``qkv (B * nW, N, 3C)`` (the qkv projection's output) -> ``(B * nW, N, C)``: the heads' softmax(q k^T * scale
    + bias + masks) v side by side. ``bias (h, N, N)`` and ``key_bias (B * nW, h, N)`` (the adaptive attention's
    per-key scores, or None) may need a gradient; ``shift_mask (nW, N, N)`` and ``key_padding (B * nW, N)`` (True =
    excluded key) are constants. Windows of one sample are consecutive."""
    return _WindowAttention.apply(qkv, bias, shift_mask, key_padding, heads, scale, key_bias)


class _WindowAttention(torch.autograd.Function):
    """Plain autograd spends two extra ``(B * nW * h, N, N)`` buffers per block (the softmax output and its gradient;
    the largest tensors of a stage-0 step) and three zero-filled qkv-sized buffers (the backward of taking q, k and
    v out of one tensor). Here the forward's scores become the softmax weights in place (the weights are what the
    backward needs), the backward's dL/dP becomes dL/dS in place, and the q, k, v gradients are written into one
    qkv-shaped gradient. The kernels are those of the plain explicit form: the forward is bitwise the same, the
    gradients agree to rounding."""

    @staticmethod
    def forward(ctx, qkv, bias, shift_mask, key_padding, heads, scale, key_bias=None):
        bw, n, c3 = qkv.shape
        nw = shift_mask.shape[0] if shift_mask is not None else 1
        h, d = heads, c3 // (3 * heads)
        parts = qkv.view(bw, n, 3, h, d)
        q3 = torch.mul(parts[:, :, 0].transpose(1, 2), scale, out=qkv.new_empty(bw, h, n, d)).view(bw * h, n, d)
        k3 = parts[:, :, 1].transpose(1, 2).reshape(bw * h, n, d)
        v3 = parts[:, :, 2].transpose(1, 2).reshape(bw * h, n, d)
        attn = torch.bmm(q3, k3.transpose(1, 2))
        add_masks_(attn.view(bw // nw, nw, h, n, n), bias, shift_mask, key_padding, key_bias)
        torch.softmax(attn, -1, out=attn)
        ctx.save_for_backward(q3, k3, v3, attn)
        ctx.scale, ctx.shape, ctx.bias_dtype = scale, (bw, h, n, d), bias.dtype
        ctx.key_bias_dtype = key_bias.dtype if key_bias is not None else None
        return torch.bmm(attn, v3).view(bw, h, n, d).transpose(1, 2).reshape(bw, n, h * d)

    @staticmethod
    def backward(ctx, grad_out):
        q3, k3, v3, attn = ctx.saved_tensors
        bw, h, n, d = ctx.shape
        g3 = grad_out.reshape(bw, n, h, d).transpose(1, 2).reshape(bw * h, n, d)
        grad_qkv = grad_out.new_empty(bw, n, 3, h, d)

        def put(i, grad, scale=None):  # (B * nW * h, N, d) into the qkv layout
            dst = grad_qkv[:, :, i].transpose(1, 2)
            src = grad.view(bw, h, n, d)
            torch.mul(src, scale, out=dst) if scale is not None else dst.copy_(src)

        put(2, torch.bmm(attn.transpose(1, 2), g3))
        grad = torch.bmm(g3, v3.transpose(1, 2))  # dL/dP
        torch._softmax_backward_data(grad, attn, -1, attn.dtype, grad_input=grad)  # in place: dL/dS
        put(0, torch.bmm(grad, k3), ctx.scale)
        put(1, torch.bmm(grad.transpose(1, 2), q3))
        grad_bias = grad.view(-1, h, n, n).sum(0).to(ctx.bias_dtype) if ctx.needs_input_grad[1] else None
        grad_key_bias = (grad.view(bw, h, n, n).sum(2).to(ctx.key_bias_dtype)  # sum over queries
                         if ctx.key_bias_dtype is not None and ctx.needs_input_grad[6] else None)
        return grad_qkv.view(bw, n, 3 * h * d), grad_bias, None, None, None, None, grad_key_bias


# -------------------------------------------------------------------------------------------------- decoder
def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1x1 convolution of ``x (B, C_in, D, H, W)`` with ``weight (C_out, C_in, 1, 1, 1)`` (or ``(C_out, C_in)``)
    as one batched matrix product ``(C_out, C_in) @ (C_in, voxels)`` per sample: the same sums as ``F.conv3d``.

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


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=(1, 1, 1),
           padding=(0, 0, 0)) -> torch.Tensor:
    """``F.conv3d(x, weight, bias, stride, padding)`` for ``x (B, C_in, D, H, W)``; in inference on float32 through
    oneDNN (``torch.mkldnn_convolution``): the same sums, to float32 rounding.

    PyTorch picks its own im2col + GEMM kernel (``slow_conv3d``) for a batch-1 input whose ``C * D * H`` is at most
    20480 (every decoder level below full resolution, the 1-channel input at full resolution and its patch
    embedding), and nnU-Net's predictor feeds one window at a time: at batch 1 those convolutions took 10-25x longer
    than oneDNN's on 2 cores (a 12 -> 12 channel 3x3x3 convolution of a 32^3 map: 49 ms against 1.9 ms of CPU time).
    Training batches (2 and more) already run oneDNN; autograd, float64 and autocast keep ``F.conv3d``."""
    if (not torch.is_grad_enabled() and x.dtype == weight.dtype == torch.float32 and torch.backends.mkldnn.enabled
            and torch.backends.mkldnn.is_available() and not torch.is_autocast_enabled(x.device.type)):
        return torch.mkldnn_convolution(x, weight, bias, tuple(padding), tuple(stride), (1, 1, 1), 1)
    return F.conv3d(x, weight, bias, tuple(stride), tuple(padding))


def transposed_conv2(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv_transpose3d(x, weight, stride=2)`` for ``weight (C_in, C_out, 2, 2, 2)``, computed as what it is: one
    matrix ``(C_out * 8, C_in)`` maps each input voxel to its 2x2x2 output block, then the blocks are interleaved."""
    b, cin, d, h, w = x.shape
    cout = weight.shape[1]
    y = pointwise(x, weight.reshape(cin, cout * 8).t()).view(b, cout, 2, 2, 2, d, h, w)
    return y.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, cout, 2 * d, 2 * h, 2 * w)


def _unviewed_norm(norm: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """``norm(y)`` as a tensor that is not an autograd view, so in-place operations on it do not make autograd copy
    the whole map back in the backward pass. A non-affine ``nn.InstanceNorm3d`` is the batch norm of the map reshaped
    to ``(1, B * C, *spatial)`` (what ``F.instance_norm`` computes, then views back); that batch norm's own output is
    returned in its flat shape."""
    if isinstance(norm, nn.InstanceNorm3d) and not norm.affine and not norm.track_running_stats:
        b, c = y.shape[:2]
        return F.batch_norm(y.reshape(1, b * c, *y.shape[2:]), None, None, training=True, eps=norm.eps)
    return norm(y)


def residual_block(x: torch.Tensor, conv1: nn.Module, norm1: nn.Module, conv2: nn.Module, norm2: nn.Module,
                   conv3: nn.Module | None, norm3: nn.Module | None, slope: float) -> torch.Tensor:
    """``lrelu(norm2(conv2(lrelu(norm1(conv1(x))))) + shortcut)`` with ``shortcut = norm3(conv3(x))`` (or ``x`` when
    ``conv3`` is None): MONAI's arithmetic and kernels, the LeakyReLUs and the residual addition in place on the norms'
    own outputs (whose backward does not need them), viewed back to ``(B, C, ...)`` afterwards."""
    y = conv1(x)
    shape = y.shape
    y = F.leaky_relu(_unviewed_norm(norm1, y), slope, inplace=True).view(shape)
    y = _unviewed_norm(norm2, conv2(y))
    residual = _unviewed_norm(norm3, conv3(x)) if conv3 is not None else x
    return F.leaky_relu(y.add_(residual.reshape(y.shape)), slope, inplace=True).view(shape)
