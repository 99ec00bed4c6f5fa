"""Our Swin UNETR configuration against MONAI 1.6.1 ``SwinUNETR`` with identical, perturbed weights.

MONAI is a declared test dependency (``.[test]``), imported directly: without it these tests fail, never skip.
Weights are copied by an independent key mapping written here (not the package's adapter). Our network takes
(B, C, Z, Y, X); MONAI is fed the (X, Y, Z)-permuted input and its output permuted back.
"""
from __future__ import annotations

import re

import monai.networks.nets.swin_unetr as monai_swin
import pytest
import torch

from nnunet_swin.networks import SwinSegmentationNetwork, cpu_kernels
from nnunet_swin.networks.presets import get_preset

def monai_to_ours(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if key.startswith("swinViT."):
            k = key[len("swinViT."):]
            if k.endswith("relative_position_index"):
                continue
            k = re.sub(r"^layers(\d)\.0\.", lambda m: f"layers.{int(m.group(1)) - 1}.", k)
            k = k.replace("mlp.linear1", "mlp.fc1").replace("mlp.linear2", "mlp.fc2")
            out["encoder." + k] = value
        else:
            out["decoder." + key] = value
    return out


def make_pair(dtype, feature=12, depths=(2, 2, 2, 2), heads=(3, 3, 3, 3), merge_order="monai16", classes=3,
              in_ch=1, seed=0):
    torch.manual_seed(seed)
    ref = monai_swin.SwinUNETR(in_ch, classes, feature_size=feature, depths=depths, num_heads=heads).to(dtype)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    kw = get_preset("swin_unetr")
    kw.update(embed_dim=feature, decoder_features=feature, depths=list(depths), num_heads=list(heads),
              merge_order=merge_order)
    ours = SwinSegmentationNetwork(in_ch, classes, **kw).to(dtype)
    result = ours.load_state_dict(monai_to_ours(ref.state_dict()), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return ours.eval(), ref.eval()


def monai_zyx(ref, x):
    return ref(x.permute(0, 1, 4, 3, 2)).permute(0, 1, 4, 3, 2)


@pytest.fixture(scope="module")
def pair64():
    return make_pair(torch.float64)


def _monai_hidden(ref, x):
    """MONAI encoder outputs for our (Z, Y, X) input, in MONAI's (X, Y, Z) frame (what our encoder computes in)."""
    return ref.swinViT(x.permute(0, 1, 4, 3, 2), ref.normalize)


@pytest.mark.parametrize("shape", [(32, 32, 64), (64, 64, 64), (64, 32, 96)])
def test_encoder_float64_matches_monai16_order(pair64, shape):
    ours, ref = pair64
    x = torch.randn(1, 1, *shape, dtype=torch.float64)
    with torch.no_grad():
        mine = ours.encoder(x.permute(0, 1, 4, 3, 2))
        theirs = _monai_hidden(ref, x)
    assert len(mine) == len(theirs) == 5
    for a, b in zip(mine, theirs):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 1e-10


def test_network_float64_matches_monai_and_axis_order(pair64):
    """Whole network; and feeding MONAI the unpermuted (Z, Y, X) tensor gives a different answer: the permutation is
    what makes the pretrained weights see what they saw in pretraining."""
    ours, ref = pair64
    x = torch.randn(1, 1, 32, 32, 64, dtype=torch.float64)
    with torch.no_grad():
        a = ours(x)
        right = monai_zyx(ref, x)
        wrong = ref(x)
    assert a.shape == (1, 3, 32, 32, 64)
    assert (a - right).abs().max().item() < 1e-10
    assert (a - wrong).abs().max().item() > 1e-3


def test_encoder_float64_matches_monai_legacy_merge(monai_legacy_merging):
    ours, ref = make_pair(torch.float64, merge_order="legacy")
    x = torch.randn(1, 1, 32, 32, 64, dtype=torch.float64)
    with torch.no_grad():
        unpatched = _monai_hidden(ref, x)[4]
        monai_legacy_merging()
        patched = _monai_hidden(ref, x)
        mine = ours.encoder(x.permute(0, 1, 4, 3, 2))
    for a, b in zip(mine, patched):
        assert (a - b).abs().max().item() < 1e-10
    assert (mine[4] - unpatched).abs().max().item() > 1e-3  # the two orders really are different functions


def test_probe_path_equals_fused_and_monai_softmax(pair64):
    """Explicit (probe) and fused attention give the same features; probe weights equal MONAI's softmax outputs."""
    ours, ref = pair64
    x = torch.randn(2, 1, 32, 32, 64, dtype=torch.float64)
    captured_ref = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: captured_ref.append(out))
             for name, m in ref.named_modules() if name.endswith("attn.softmax")]
    events = []
    xp = x.permute(0, 1, 4, 3, 2)
    try:
        with torch.no_grad():
            fused = ours.encoder(xp)
            with ours.attention_probe(events.append):
                probed = ours.encoder(xp)
            _monai_hidden(ref, x)
    finally:
        for h in hooks:
            h.remove()
    for a, b in zip(fused, probed):
        assert (a - b).abs().max().item() < 1e-10
    assert len(events) == len(captured_ref) == 8
    assert [(e.stage, e.block, e.shifted) for e in events] == [
        (0, 0, False), (0, 1, True), (1, 0, False), (1, 1, True), (2, 0, False), (2, 1, True),
        (3, 0, False), (3, 1, False)]  # stage 3 map is 4x2x2 <= window 7 on every axis: window shrinks, no shift
    assert events[-1].window == (4, 2, 2)
    for e, r in zip(events, captured_ref):
        assert e.attn.shape == r.shape
        assert e.token_kind.shape == e.attn.shape[:1] + e.attn.shape[-1:]
        assert (e.attn - r).abs().max().item() < 1e-10


def test_training_gradients_match_monai(pair64):
    """Autograd through our CPU training path (in-place bias/mask additions) gives MONAI's gradients."""
    ours, ref = pair64
    x = torch.randn(1, 1, 32, 32, 64, dtype=torch.float64)
    weights = [torch.randn(o.shape[1:], dtype=torch.float64) for o in _monai_hidden(ref, x)]
    try:
        sum((o * w).sum() for o, w in zip(ours.encoder(x.permute(0, 1, 4, 3, 2)), weights)).backward()
        sum((o * w).sum() for o, w in zip(_monai_hidden(ref, x), weights)).backward()
        pairs = [(ours.encoder.layers[0].blocks[1].attn.relative_position_bias_table,
                  ref.swinViT.layers1[0].blocks[1].attn.relative_position_bias_table),
                 (ours.encoder.layers[3].blocks[0].attn.relative_position_bias_table,
                  ref.swinViT.layers4[0].blocks[0].attn.relative_position_bias_table),
                 (ours.encoder.layers[1].blocks[1].attn.qkv.weight, ref.swinViT.layers2[0].blocks[1].attn.qkv.weight),
                 (ours.encoder.patch_embed.proj.weight, ref.swinViT.patch_embed.proj.weight)]
        for a, b in pairs:
            assert a.grad is not None and (a.grad - b.grad).abs().max().item() < 1e-9
    finally:
        ours.zero_grad(set_to_none=True)
        ref.zero_grad(set_to_none=True)


@pytest.fixture(scope="module")
def monai_gradients(pair64):
    """MONAI's gradients of a weighted sum of its logits, for our (Z, Y, X) input: input gradient and parameter
    gradients under our parameter names."""
    _, ref = pair64
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 1, 32, 32, 64, generator=g, dtype=torch.float64)
    weight = torch.randn(1, 3, 32, 32, 64, generator=g, dtype=torch.float64)
    xx = x.clone().requires_grad_(True)
    ref.zero_grad(set_to_none=True)
    (monai_zyx(ref, xx) * weight).sum().backward()
    grads = monai_to_ours({name: p.grad.clone() for name, p in ref.named_parameters()})
    ref.zero_grad(set_to_none=True)
    return x, weight, xx.grad, grads


@pytest.mark.parametrize("kernels", ["cpu_kernels", "plain_layers"])
def test_full_network_gradients_match_monai(pair64, monai_gradients, kernels):
    """Whole network, float64: the input gradient and the gradient of every parameter, decoder included (the CPU
    kernels' hand-written backward passes, the in-place residual and flat instance norm, and the plain layers)."""
    ours, _ = pair64
    x, weight, ref_gx, ref_grads = monai_gradients
    xx = x.clone().requires_grad_(True)
    ours.zero_grad(set_to_none=True)
    with cpu_kernels.plain_layers() if kernels == "plain_layers" else torch.enable_grad():
        (ours(xx) * weight).sum().backward()
    try:
        grads = {name: p.grad for name, p in ours.named_parameters()}
        assert set(grads) == set(ref_grads)
        decoder = [name for name in grads if name.startswith("decoder.")]
        assert len(decoder) == len([n for n in ref_grads if n.startswith("decoder.")]) > 30
        scale = max(1.0, ref_gx.abs().max().item())
        assert (xx.grad - ref_gx).abs().max().item() < 1e-10 * scale
        for name, grad in grads.items():
            ref = ref_grads[name]
            assert grad is not None and grad.abs().max().item() > 0, name
            assert (grad - ref).abs().max().item() < 1e-10 * max(1.0, ref.abs().max().item()), name
    finally:
        ours.zero_grad(set_to_none=True)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(96, 96, 96), (128, 128, 128), (64, 128, 128), (64, 160, 192)])
def test_float32_full_config_matches_monai(shape):
    """The real Swin UNETR configuration (feature 48) in float32 at the sizes the issue names (Z, Y, X)."""
    ours, ref = make_pair(torch.float32, feature=48, heads=(3, 6, 12, 24), classes=2)
    x = torch.randn(1, 1, *shape)
    with torch.no_grad():
        a = ours(x)
        b = monai_zyx(ref, x)
    assert a.shape == (1, 2, *shape)
    assert (a - b).abs().max().item() < 1e-5
