"""The network contract nnU-Net relies on: constructor, sizes, errors, memory estimate, checkpointing, hooks."""
from __future__ import annotations

import pytest
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.networks import SwinEncoder, SwinSegmentationNetwork
from nnunet_swin.networks.presets import NETWORK_CLASS_NAME, get_preset


def build(preset="swin_unetr_tiny", in_ch=1, classes=3, **changes):
    kw = get_preset(preset)
    kw.update(changes)
    return SwinSegmentationNetwork(input_channels=in_ch, num_classes=classes, deep_supervision=False, **kw)


def test_nnunet_builds_it_from_the_plans_name():
    from nnunet_swin.networks.presets import PRESETS
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    kwargs = dict(PRESETS["smit_tiny"], strides=[[2, 2, 2]] * 5)
    net = get_network_from_plans(NETWORK_CLASS_NAME, kwargs, [], 2, 4, allow_init=True, deep_supervision=False)
    assert isinstance(net, SwinSegmentationNetwork)
    with torch.no_grad():
        assert net(torch.randn(1, 2, 32, 64, 96)).shape == (1, 4, 32, 64, 96)


@pytest.mark.parametrize("preset", ["smit_tiny", "swin_unetr_tiny"])
def test_anisotropic_shapes_and_no_softmax(preset):
    net = build(preset, in_ch=2, classes=3).eval()
    x = torch.randn(2, 2, 64, 32, 96)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, 64, 32, 96)
    assert not torch.allclose(y.softmax(1).sum(1), y.sum(1))  # logits, not probabilities


def test_bad_sides_name_valid_neighbours():
    net = build()
    with pytest.raises(UserError) as err:
        net(torch.randn(1, 1, 40, 64, 100))
    msg = str(err.value)
    assert "\n" not in msg and "Z=40 (use 32 or 64)" in msg and "X=100 (use 96 or 128)" in msg and "Y=" not in msg


def test_constructor_rejects_unknown_keys_and_deep_supervision():
    with pytest.raises(UserError, match="unknown arch_kwargs \\['foo'\\]"):
        build(foo=1)
    with pytest.raises(UserError, match="no deep supervision"):
        SwinSegmentationNetwork(1, 2, deep_supervision=True, **get_preset("smit_tiny"))
    assert build(strides=[[2, 2, 2]] * 5).decoder.deep_supervision is False


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    a = build("smit_tiny", drop_path_rate=0.0)
    b = build("smit_tiny", gradient_checkpointing=True)
    b.load_state_dict(a.state_dict())
    assert b.gradient_checkpointing and not a.gradient_checkpointing
    x = torch.randn(1, 1, 32, 32, 64)
    for net in (a, b):
        net(x).square().mean().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6), name


def test_feature_map_estimate_grows_with_the_patch():
    net = build("swin_unetr")
    small = net.compute_conv_feature_map_size((64, 128, 128))
    big = net.compute_conv_feature_map_size((128, 128, 128))
    assert 0 < small < big
    assert isinstance(big, int)
    # full-resolution decoder maps alone: encoder1 (3 convs) + decoder1 (transp + 3 convs) + out, 48 channels
    assert big > 7 * 48 * 128 ** 3


def test_encoder_standalone_and_block_hooks():
    kw = {k: v for k, v in get_preset("smit_tiny").items()
          if k not in ("backbone", "decoder_features", "decoder_norm", "pretrained_input_size")}
    enc = SwinEncoder(1, **kw)
    seen = []
    hooks = [blk.register_forward_hook(lambda m, i, o, s=s, j=j: seen.append((s, j, tuple(o.shape))))
             for s, j, blk in enc.iter_blocks()]
    outs = enc(torch.randn(2, 1, 64, 32, 96))
    for h in hooks:
        h.remove()
    assert [tuple(o.shape) for o in outs] == [(2, 12, 32, 16, 48), (2, 24, 16, 8, 24), (2, 48, 8, 4, 12),
                                              (2, 96, 4, 2, 6), (2, 192, 2, 1, 3)]
    assert seen == [(0, 0, (2, 32, 16, 48, 12)), (1, 0, (2, 16, 8, 24, 24)), (2, 0, (2, 8, 4, 12, 48)),
                    (3, 0, (2, 4, 2, 6, 96))]


@pytest.mark.parametrize("preset", ["smit_tiny", "swin_unetr_tiny"])
def test_training_step_under_bf16_autocast(preset):
    """Under autocast (nnU-Net trains with it on GPUs; the CPU autocast applies the same casting rules) the network
    runs forward and backward with bf16 products, and every parameter gets a finite gradient in its own dtype.

    oneDNN is switched off for this test: its bf16 Conv3d weight gradient on CPU (torch 2.14.1, oneDNN 3.12) reads
    uninitialised memory when a side of the map is 2 (maps 2x1x1 and 2x2x2 here; 1x1x1 and 4x2x2 are fine), so it
    returns NaN whenever the reused heap holds NaN. That is a bug of the kernel, not of this network (a lone
    ``nn.Conv3d`` shows it); nnU-Net trains with autocast only on CUDA."""
    torch.manual_seed(0)
    net = build(preset, classes=2).train()
    x = torch.randn(1, 1, 32, 32, 64)
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.randint(0, 2, (1, 32, 32, 64)))
        loss.backward()
    finally:
        torch.backends.mkldnn.enabled = mkldnn
    assert logits.dtype == torch.bfloat16 and logits.shape == (1, 2, 32, 32, 64) and torch.isfinite(loss)
    bad = [name for name, p in net.named_parameters()
           if p.grad is None or p.grad.dtype != p.dtype or not torch.isfinite(p.grad).all()]
    assert not bad, f"missing, mistyped or non-finite gradients: {bad}"
