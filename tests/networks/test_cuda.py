"""The CUDA path under nnU-Net's defaults: both full-size backbones train under fp16 autocast + GradScaler +
``torch.compile`` and under bf16, with finite loss and gradients; the plain layers run (not the CPU kernels) and
compute what the CPU path computes; which SDPA kernel runs the window attention is reported.

Without a CUDA device every test here is reported as skipped ("not run: no CUDA device"), never as passed.
``benchmarks/gpu_check.py`` runs the same checks with timings, the MONAI comparison and the stock nnU-Net commands.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnunet_swin.networks import SwinSegmentationNetwork, cpu_kernels
from nnunet_swin.networks.presets import get_preset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="not run: no CUDA device")

ACT = (64, 128, 128)  # the paper's 128 x 128 x 64 crop, (Z, Y, X)


def network(preset: str, seed: int = 0) -> SwinSegmentationNetwork:
    torch.manual_seed(seed)
    return SwinSegmentationNetwork(1, 2, **get_preset(preset)).cuda().train()


def train_steps(net, dtype: torch.dtype, compiled: bool, steps: int = 6):
    """nnU-Net's train step (autocast, GradScaler for fp16, unscale, clip at 12, optimizer step) on random data;
    returns the losses and, for the last step, whether every gradient is finite after unscaling."""
    model = torch.compile(net) if compiled else net
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=1e-5)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(2, 1, *ACT, device="cuda", generator=g)
    y = torch.randint(0, 2, (2, *ACT), device="cuda", generator=g)
    losses, finite = [], False
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype):
            loss = F.cross_entropy(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        grads = [p.grad for p in net.parameters()]
        finite = all(gr is not None for gr in grads) and bool(torch.stack([gr.float().abs().max() for gr in grads])
                                                              .isfinite().all())
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        losses.append(loss.detach().float().item())
    return losses, finite


@pytest.mark.parametrize("preset", ["smit", "swin_unetr"])
def test_fp16_gradscaler_compiled_training(preset):
    torch._dynamo.reset()
    losses, finite = train_steps(network(preset), torch.float16, compiled=True)
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert finite, "non-finite gradients after the scaler settled"  # GradScaler may skip early steps, not the last


@pytest.mark.parametrize("preset", ["smit", "swin_unetr"])
def test_bf16_training(preset):
    losses, finite = train_steps(network(preset), torch.bfloat16, compiled=False, steps=2)
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert finite


@pytest.mark.parametrize("preset", ["smit_tiny", "swin_unetr_tiny"])
def test_cuda_runs_the_plain_layers_and_matches_the_cpu_path(preset):
    """float32, TF32 off: the CUDA forward and gradients equal the CPU path's (CPU kernels on) to float32 rounding."""
    assert not cpu_kernels.use_cpu_kernels(torch.zeros(1, device="cuda"))
    kw = get_preset(preset)
    kw["depths"] = [2, 2, 2, 2]
    torch.manual_seed(0)
    cpu = SwinSegmentationNetwork(1, 2, **kw).train()
    gpu = SwinSegmentationNetwork(1, 2, **kw).cuda().train()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(1, 1, 32, 64, 64)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        out_cpu = cpu(x)
        out_cpu.square().mean().backward()
        out_gpu = gpu(x.cuda())
        out_gpu.square().mean().backward()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    assert (out_gpu.cpu() - out_cpu.detach()).abs().max().item() < 1e-4
    for (name, a), b in zip(cpu.named_parameters(), gpu.parameters()):
        scale = max(1e-3, a.grad.abs().max().item())
        assert (b.grad.cpu() - a.grad).abs().max().item() < 1e-3 * scale, name


@pytest.mark.parametrize("preset", ["smit", "swin_unetr"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sdpa_backend_is_reported(preset, dtype, capsys):
    """Which kernel PyTorch picks for each block geometry in training (mask with a gradient), and which run at all;
    printed (``pytest -s`` / ``-rP``) and asserted only in that the one picked does run."""
    from nnunet_swin.networks.sdpa_backends import sdpa_report
    net = network(preset)
    with torch.autocast("cuda", dtype=dtype):
        calls = sdpa_report(net, torch.randn(2, 1, *ACT, device="cuda"))
    assert calls and all(c.mask_requires_grad for c in calls)
    with capsys.disabled():
        for c in calls:
            print(f"\n[sdpa {preset} {str(dtype)[6:]}] {c.line()}", end="")
    for c in calls:
        assert any(v == "runs" for v in c.backends.values()), c.backends
        if c.default in c.backends:
            assert c.backends[c.default] == "runs", (c.default, c.backends[c.default])
