"""The SDPA diagnostic on CPU (where it can run here): it sees the fused path's calls, block by block, and tries
each backend on their operands without changing what the network computes."""
import torch

from nnunet_swin.networks import SwinSegmentationNetwork, cpu_kernels
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.sdpa_backends import BACKENDS, sdpa_report


def test_report_covers_every_block_geometry_and_leaves_sdpa_alone():
    torch.manual_seed(0)
    kw = get_preset("swin_unetr_tiny")
    kw["depths"] = [2, 2, 2, 2]
    net = SwinSegmentationNetwork(1, 2, **kw).train()
    x = torch.randn(1, 1, 32, 64, 64)
    real = torch.nn.functional.scaled_dot_product_attention
    with cpu_kernels.plain_layers():
        calls = sdpa_report(net, x)
    assert torch.nn.functional.scaled_dot_product_attention is real
    # stage 0: unshifted (1 window per head group) and shifted blocks; window 7 on a 32 x 32 x 16 map (X, Y, Z)
    assert [(c.stage, c.block) for c in calls][:2] == [(0, 0), (0, 1)]
    assert calls[0].query_shape == (75, 1, 343, 12) and calls[0].mask_shape == (1, 1, 343, 343)
    assert all(c.mask_requires_grad for c in calls)  # the relative-position bias is learned
    for c in calls:
        assert set(c.backends) == {b.name for b in BACKENDS}
        assert c.backends["MATH"] == "runs" and c.default == "MATH"  # CPU: a mask with a gradient means math
        assert "MATH" in c.line()
