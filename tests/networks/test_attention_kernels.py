"""The CPU training path of window attention (``cpu_kernels.window_attention``: a hand-written backward with in-place
softmax buffers) computes what plain autograd through ``softmax(q k^T * scale + bias + masks) v`` computes: outputs
and every gradient."""
import pytest
import torch

from nnunet_swin.networks import cpu_kernels
from nnunet_swin.networks.attention import WindowAttention


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "enabled", True)  # whatever nnUNet_swin_cpu_kernels says


def _run(attn, x, shift_mask, key_padding, weight, explicit):
    """Forward + weighted-sum backward; ``explicit`` forces the plain autograd form (the probe path)."""
    attn.zero_grad(set_to_none=True)
    xx = x.detach().clone().requires_grad_(True)
    probe = (lambda w: None) if explicit else None
    out = attn(xx, attn.window_size, shift_mask=shift_mask, key_padding=key_padding, probe=probe)
    (out * weight).sum().backward()
    grads = {name: p.grad.clone() for name, p in attn.named_parameters()}
    return out.detach(), xx.grad, grads


@pytest.mark.parametrize("shifted,padded", [(False, False), (True, False), (True, True), (False, True)])
def test_training_path_equals_plain_autograd(shifted, padded):
    torch.manual_seed(0)
    window, heads, dim, batch, nw = (2, 3, 2), 3, 12, 2, 4
    n = 12
    attn = WindowAttention(dim, heads, window).double()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_(0, 0.5)
    x = torch.randn(batch * nw, n, dim, dtype=torch.float64)
    shift_mask = None
    if shifted:
        shift_mask = torch.zeros(nw, n, n, dtype=torch.float64)
        shift_mask[1:, :5, 5:] = -100.0
        shift_mask[1:, 5:, :5] = -100.0
    key_padding = (torch.rand(batch * nw, n) < 0.3) if padded else None
    weight = torch.linspace(-1, 1, batch * nw * n * dim, dtype=torch.float64).view(batch * nw, n, dim)
    assert torch.is_grad_enabled()
    out, gx, g = _run(attn, x, shift_mask, key_padding, weight, explicit=False)
    ref_out, ref_gx, ref_g = _run(attn, x, shift_mask, key_padding, weight, explicit=True)
    assert (out - ref_out).abs().max() < 1e-13
    assert (gx - ref_gx).abs().max() < 1e-12
    assert set(g) == set(ref_g) == {"relative_position_bias_table", "qkv.weight", "qkv.bias", "proj.weight",
                                    "proj.bias"}
    for name in g:
        assert (g[name] - ref_g[name]).abs().max() < 1e-12, name
    assert g["relative_position_bias_table"].abs().max() > 0


def test_training_path_in_bfloat16_follows_float32():
    """Under CPU bf16 autocast the training path runs and its input gradient stays close to the float32 one."""
    torch.manual_seed(1)
    attn = WindowAttention(24, 3, (3, 3, 3))
    x = torch.randn(4, 27, 24)
    weight = torch.randn(4, 27, 24)
    _, gx32, _ = _run(attn, x, None, None, weight, explicit=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, gx16, g16 = _run(attn, x, None, None, weight, explicit=False)
    assert out.dtype == torch.bfloat16 and gx16.dtype == torch.float32
    assert all(torch.isfinite(v).all() for v in g16.values())
    assert g16["relative_position_bias_table"].dtype == torch.float32
    rel = (gx16 - gx32).norm() / gx32.norm()
    assert rel < 0.05, rel
