"""The CPU kernels' matrix-product forms of 1x1x1 and 2x2x2/stride-2 convolutions compute what the convolutions compute,
forward and backward, so MONAI / SMIT decoder weights keep their meaning."""
import pytest
import torch
import torch.nn.functional as F

from nnunet_swin.networks.cpu_kernels import pointwise, transposed_conv2
from nnunet_swin.networks.decoder import ConvUnit, OutBlock, TransposedConv


def _grads(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)  # not symmetric: catches mix-ups
    (out * weight).sum().backward()
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("cin,cout,bias", [(1, 12, False), (24, 12, False), (12, 2, True)])
def test_pointwise_equals_conv3d_forward_and_backward(cin, cout, bias):
    torch.manual_seed(0)
    x = torch.randn(2, cin, 4, 6, 8, dtype=torch.float64)
    w = torch.randn(cout, cin, 1, 1, 1, dtype=torch.float64)
    b = torch.randn(cout, dtype=torch.float64) if bias else None
    extra = (b,) if bias else ()
    ours, g_ours = _grads(lambda x, w, *b: pointwise(x, w, *b), x, w, *extra)
    ref, g_ref = _grads(lambda x, w, *b: F.conv3d(x, w, *b), x, w, *extra)
    assert ours.shape == ref.shape and (ours - ref).abs().max() < 1e-12
    for a, r in zip(g_ours, g_ref):
        assert (a - r).abs().max() < 1e-12


@pytest.mark.parametrize("cin,cout,size", [(24, 12, (2, 3, 4)), (8, 8, (1, 1, 1)), (48, 24, (4, 2, 3))])
def test_transposed_conv_equals_conv_transpose3d_forward_and_backward(cin, cout, size):
    torch.manual_seed(1)
    mod = TransposedConv(cin, cout).double()
    x = torch.randn(2, cin, *size, dtype=torch.float64)

    def kernel(x):
        return transposed_conv2(x, mod.conv.weight)

    ours, (g_ours,) = _grads(kernel, x)
    ref, (g_ref,) = _grads(mod.conv, x)  # the nn.ConvTranspose3d that holds the weight
    assert ours.shape == (2, cout, *(2 * s for s in size))
    assert (ours - ref).abs().max() < 1e-12 and (g_ours - g_ref).abs().max() < 1e-12
    mod.zero_grad()
    _grads(kernel, x)
    w_ours = mod.conv.weight.grad.clone()
    mod.zero_grad()
    _grads(mod.conv, x)
    assert (w_ours - mod.conv.weight.grad).abs().max() < 1e-12


def test_modules_keep_monai_keys_and_shapes():
    assert {k: tuple(v.shape) for k, v in ConvUnit(6, 3, 1).state_dict().items()} == {"conv.weight": (3, 6, 1, 1, 1)}
    assert {k: tuple(v.shape) for k, v in TransposedConv(6, 3).state_dict().items()} == \
        {"conv.weight": (6, 3, 2, 2, 2)}
    assert {k: tuple(v.shape) for k, v in OutBlock(6, 2).state_dict().items()} == \
        {"conv.conv.weight": (2, 6, 1, 1, 1), "conv.conv.bias": (2,)}

