"""Probe mode: token kinds (real / input padding / Swin window padding), padding-key exclusion, fused == probe."""
from __future__ import annotations

import torch

from nnunet_swin.networks import AttentionEvent, SwinSegmentationNetwork
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.windows import partition


def tiny(preset: str, dtype=torch.float64, **changes) -> SwinSegmentationNetwork:
    torch.manual_seed(0)
    kw = get_preset(preset)
    kw.update(depths=[2, 2, 2, 2], **changes)
    net = SwinSegmentationNetwork(1, 2, **kw).to(dtype).eval()
    with torch.no_grad():
        for p in net.encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def collect(net, x, mask=None):
    events: list[AttentionEvent] = []
    with torch.no_grad(), net.attention_probe(events.append):
        out = net(x, mask)
    return out, events


def encoder_zyx(net, x, mask=None):
    """The encoder alone on nnU-Net-frame tensors (what the network does before its decoder)."""
    return net.encoder(x.permute(0, 1, 4, 3, 2), None if mask is None else mask.permute(0, 3, 2, 1))


def collect_encoder(net, x, mask=None):
    events: list[AttentionEvent] = []
    with torch.no_grad(), net.encoder.attention_probe(events.append):
        out = encoder_zyx(net, x, mask)
    return out, events


def test_token_kinds_follow_the_padding_mask_through_every_merge():
    """nnU-Net-frame mask: slices Z >= 40 of 64 are zero-padding. In the encoder frame (X, Y, Z) that is the last axis;
    a token is real if any voxel it covers is real, so the real extent per stage is 20, 10, 5, 3 tokens."""
    net = tiny("smit_tiny", dtype=torch.float32)
    x = torch.randn(2, 1, 64, 64, 64)
    mask = torch.ones(2, 64, 64, 64, dtype=torch.bool)
    mask[:, 40:] = False
    mask[1] = True  # the second sample has no padding
    _, events = collect(net, x, mask)
    assert len(events) == 8
    for e in events:
        side = 32 // 2 ** e.stage
        real_z = [20, 10, 5, 3][e.stage]
        expected = torch.zeros(2, side, side, side, dtype=torch.int8)
        expected[0, :, :, real_z:] = 1
        if e.shifted:
            expected = torch.roll(expected, shifts=(-2, -2, -2), dims=(1, 2, 3))
        assert e.token_kind.dtype == torch.int8
        assert torch.equal(e.token_kind, partition(expected, (4, 4, 4)))
        assert e.attn.shape == (e.token_kind.shape[0], e.attn.shape[1], 64, 64)
        assert torch.allclose(e.attn.sum(-1), torch.ones(()), atol=1e-5)


def test_window_padding_is_kind_2_and_no_kind_1_without_mask():
    """Swin UNETR window 7 on a (Z, Y, X) = 32 x 64 x 64 crop: the stage-0 map 32 x 32 x 16 (X, Y, Z) is padded to
    35 x 35 x 21 for windowing; those tokens are kind 2."""
    net = tiny("swin_unetr_tiny", dtype=torch.float32)
    _, events = collect(net, torch.randn(1, 1, 32, 64, 64))
    first = events[0]
    assert first.window == (7, 7, 7) and not first.shifted
    assert int((first.token_kind == 2).sum()) == 35 * 35 * 21 - 32 * 32 * 16
    assert all(int((e.token_kind == 1).sum()) == 0 for e in events)
    last = events[-1]  # stage 3 map (4, 4, 2): window shrinks to the map, nothing padded
    assert last.window == (4, 4, 2) and int((last.token_kind != 0).sum()) == 0


def test_exclude_padding_keys_gives_zero_weight_to_padding_and_no_nan():
    net = tiny("swin_unetr_tiny", exclude_padding_keys=True)
    x = torch.randn(1, 1, 32, 64, 64, dtype=torch.float64)
    mask = torch.zeros(1, 32, 64, 64, dtype=torch.bool)
    mask[:, :, :20, :24] = True  # most windows hold no real token at all
    x = x * mask.unsqueeze(1)
    out, events = collect_encoder(net, x, mask)
    assert all(torch.isfinite(o).all() for o in out)
    for e in events:
        assert torch.isfinite(e.attn).all()
        real_q = e.token_kind == 0                                  # (B * nW, N)
        pad_k = (e.token_kind != 0).unsqueeze(1)                    # (B * nW, 1, N)
        weight_on_padding = (e.attn * pad_k.unsqueeze(1)).sum(-1)   # (B * nW, heads, N)
        assert weight_on_padding.permute(0, 2, 1)[real_q].abs().max().item() < 1e-12
    with torch.no_grad():
        fused = encoder_zyx(net, x, mask)
    for a, b in zip(fused, out):
        assert (a - b).abs().max().item() < 1e-10


def test_exclusion_is_off_by_default_and_changes_the_function():
    x = torch.randn(1, 1, 32, 64, 64, dtype=torch.float64)
    mask = torch.ones(1, 32, 64, 64, dtype=torch.bool)
    mask[:, 20:] = False
    plain, excl = tiny("swin_unetr_tiny"), tiny("swin_unetr_tiny", exclude_padding_keys=True)
    with torch.no_grad():
        a, b = encoder_zyx(plain, x, mask)[4], encoder_zyx(excl, x, mask)[4]
        c = encoder_zyx(plain, x)[4]
    assert torch.equal(a, c)  # without exclusion the mask only feeds probes
    assert (a - b).abs().max().item() > 1e-6
