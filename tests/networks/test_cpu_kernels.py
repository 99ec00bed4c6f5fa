"""The CPU kernels against the plain layers (what CUDA runs): the whole network, outputs and every gradient, with
shifted windows, window padding and padding-key exclusion; and the switch itself."""
from __future__ import annotations

import pytest
import torch

from nnunet_swin.networks import SwinSegmentationNetwork, cpu_kernels
from nnunet_swin.networks.presets import get_preset


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "enabled", True)  # whatever nnUNet_swin_cpu_kernels says


def network(preset: str, **changes) -> SwinSegmentationNetwork:
    torch.manual_seed(0)
    kw = get_preset(preset)
    kw.update(depths=[2, 2, 2, 2], **changes)  # two blocks per stage: every stage has a shifted block
    net = SwinSegmentationNetwork(1, 3, **kw).double().train()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def step(net, x, mask, target_weight):
    """Forward + weighted-sum backward: (output, input gradient, {parameter: gradient})."""
    net.zero_grad(set_to_none=True)
    xx = x.clone().requires_grad_(True)
    out = net(xx, mask)
    (out * target_weight).sum().backward()
    return out.detach(), xx.grad, {name: p.grad.clone() for name, p in net.named_parameters()}


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float64 rounding (amplified by norms over few values at the bottleneck): the largest difference
    within 1e-8 of the larger of 1 and the largest value; a wrong formula is off by O(1)."""
    return (a - b).abs().max().item() <= 1e-8 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("preset,changes", [
    ("smit_tiny", {"exclude_padding_keys": True}),
    ("swin_unetr_tiny", {}),                                  # window 7: window padding and shrunk windows
    ("swin_unetr_tiny", {"exclude_padding_keys": True, "decoder_norm": "batch"}),
    ("swin_unetr_msf_tiny", {"exclude_padding_keys": True}),  # the spine variant: key scores, fusion
])
def test_cpu_kernels_equal_the_plain_layers(preset, changes):
    net = network(preset, **changes)
    g = torch.Generator().manual_seed(1)
    # (Z, Y, X) = 32 x 32 x 64: token maps (X, Y, Z) 32 x 16 x 16 at stage 0; SMIT's window 4 shifts at stages 0-2,
    # Swin UNETR's window 7 pads 16 -> 21 and 8 -> 14 (shifted) and shrinks at the later stages
    x = torch.randn(1, 1, 32, 32, 64, generator=g, dtype=torch.float64)
    mask = None
    if changes.get("exclude_padding_keys"):
        mask = torch.ones(1, 32, 32, 64, dtype=torch.bool)
        mask[0, 20:] = False          # input padding along Z
        mask[0, :, :, 40:] = False    # and along X
        x = x * mask.unsqueeze(1)
    weight = torch.randn(1, 3, 32, 32, 64, generator=g, dtype=torch.float64)
    fast = step(net, x, mask, weight)
    with cpu_kernels.plain_layers():
        assert not cpu_kernels.use_cpu_kernels(x)
        plain = step(net, x, mask, weight)
    assert cpu_kernels.use_cpu_kernels(x)
    assert close(fast[0], plain[0]) and close(fast[1], plain[1])
    assert set(fast[2]) == set(plain[2]) == {name for name, _ in net.named_parameters()}
    for name in fast[2]:
        assert close(fast[2][name], plain[2][name]), name


def test_switch_is_on_for_cpu_tensors_only(monkeypatch):
    cpu = torch.zeros(1)
    meta = torch.zeros(1, device="meta")
    assert cpu_kernels.use_cpu_kernels(cpu) and not cpu_kernels.use_cpu_kernels(meta)
    with cpu_kernels.plain_layers():
        assert not cpu_kernels.use_cpu_kernels(cpu)
    assert cpu_kernels.use_cpu_kernels(cpu)
    monkeypatch.setattr(cpu_kernels, "enabled", False)  # what nnUNet_swin_cpu_kernels=0 sets at import
    assert not cpu_kernels.use_cpu_kernels(cpu)


def test_environment_variable_turns_the_kernels_off():
    import subprocess
    import sys
    code = "from nnunet_swin.networks import cpu_kernels as k; import torch; print(k.use_cpu_kernels(torch.zeros(1)))"
    env = {"nnUNet_swin_cpu_kernels": "false", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_instance_norms_hold_no_state():
    """MONAI's ``InstanceNorm3d(affine=False)`` has no parameters or buffers, so neither do ours (the MONAI weight
    copies in ``test_swin_vs_monai`` load with ``strict=True``)."""
    net = SwinSegmentationNetwork(1, 2, **get_preset("swin_unetr_tiny"))
    assert not [k for k in net.state_dict() if k.startswith("decoder.") and ".norm" in k]


@pytest.mark.parametrize("cin,cout,size,kernel,stride,bias", [
    (12, 12, 8, 3, 1, False),   # a decoder convolution below full resolution (PyTorch's im2col kernel at batch 1)
    (1, 12, 16, 2, 2, True),    # the patch embedding
])
def test_conv3d_equals_conv3d(cin, cout, size, kernel, stride, bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, cin, size, size, 2 * size, generator=g)
    w = torch.randn(cout, cin, kernel, kernel, kernel, generator=g)
    b = torch.randn(cout, generator=g) if bias else None
    pad = (kernel // 2,) * 3 if stride == 1 else (0, 0, 0)
    ref = torch.nn.functional.conv3d(x, w, b, stride, pad)
    with torch.inference_mode():
        fast = cpu_kernels.conv3d(x, w, b, (stride,) * 3, pad)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()
    assert torch.equal(cpu_kernels.conv3d(x, w, b, (stride,) * 3, pad), ref)  # autograd on: the plain convolution


def test_inference_forward_float32_equals_the_plain_layers():
    """Batch 1 in inference (nnU-Net's predictor, one window at a time): the float32 logits of the CPU kernels equal
    the plain layers' to float32 rounding."""
    torch.manual_seed(0)
    net = SwinSegmentationNetwork(1, 3, **get_preset("swin_unetr_tiny")).eval()
    x = torch.randn(1, 1, 32, 32, 64)
    with torch.inference_mode():
        fast = net(x)
        with cpu_kernels.plain_layers():
            plain = net(x)
    assert (fast - plain).abs().max().item() <= 1e-5 * max(1.0, plain.abs().max().item())
