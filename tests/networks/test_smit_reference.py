"""Our SMIT configuration against an independent, plain reference of SMIT's documented encoder forward pass.

The reference below follows the lab code's structure (token sequences (B, L, C), padding with zeros after norm1,
shift mask built from region slices, window size 4 never shrunk), including its quirks: the window reverse that
re-applies the partition permutation, the SMIT merge order 000,100,010,001,110,011,101,111, learned ``norm{i}``
on each stage's pre-merge tokens, and an un-normalised bottleneck. Crops after window padding are done on every axis
(the original crops only when the first two axes were padded, and crashes otherwise).

Weights are random SMIT-layout tensors (``transformer.`` keys, as in ``SMIT_3D_Seg``) loaded into our network with
the package's checkpoint adapter, so this also checks that every SMIT key lands where it should.
"""
from __future__ import annotations

import itertools
from math import ceil

import pytest
import torch
import torch.nn.functional as F
from monai.networks import nets as monai_nets

from nnunet_swin.networks import SwinSegmentationNetwork, load_pretrained_encoder
from nnunet_swin.networks.presets import get_preset

WS, SHIFT = 4, 2
MERGE = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1)]


def smit_state(embed, depths, heads, qkv_bias=True, in_ch=1, seed=0, dtype=torch.float64):
    """Random SMIT encoder weights under ``transformer.`` with the public shapes (LayerNorms perturbed too)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.05, base=0.0):
        return (base + scale * torch.randn(*shape, generator=g)).to(dtype)

    s = {"transformer.patch_embed.proj.weight": rnd(embed, in_ch, 2, 2, 2, scale=0.3),
         "transformer.patch_embed.proj.bias": rnd(embed),
         "transformer.patch_embed.norm.weight": rnd(embed, base=1.0), "transformer.patch_embed.norm.bias": rnd(embed),
         "transformer.mask_token": rnd(1, 1, embed)}
    for i, (depth, h) in enumerate(zip(depths, heads)):
        c = embed * 2 ** i
        for j in range(depth):
            p = f"transformer.layers.{i}.blocks.{j}."
            s[p + "norm1.weight"], s[p + "norm1.bias"] = rnd(c, base=1.0), rnd(c)
            s[p + "attn.relative_position_bias_table"] = rnd(343, h, scale=0.5)
            s[p + "attn.relative_position_index"] = reference_index()
            s[p + "attn.qkv.weight"] = rnd(3 * c, c, scale=c ** -0.5)
            if qkv_bias:
                s[p + "attn.qkv.bias"] = rnd(3 * c)
            s[p + "attn.proj.weight"], s[p + "attn.proj.bias"] = rnd(c, c, scale=c ** -0.5), rnd(c)
            s[p + "norm2.weight"], s[p + "norm2.bias"] = rnd(c, base=1.0), rnd(c)
            s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"] = rnd(4 * c, c, scale=c ** -0.5), rnd(4 * c)
            s[p + "mlp.fc2.weight"], s[p + "mlp.fc2.bias"] = rnd(c, 4 * c, scale=(4 * c) ** -0.5), rnd(c)
        p = f"transformer.layers.{i}.downsample."
        s[p + "reduction.weight"] = rnd(2 * c, 8 * c, scale=(8 * c) ** -0.5)
        s[p + "norm.weight"], s[p + "norm.bias"] = rnd(8 * c, base=1.0), rnd(8 * c)
        s[f"transformer.norm{i}.weight"], s[f"transformer.norm{i}.bias"] = rnd(c, base=1.0), rnd(c)
    return s


def reference_index():
    """Standard Swin relative-position index for a 4x4x4 window, by explicit loops."""
    coords = list(itertools.product(range(WS), repeat=3))
    span = 2 * WS - 1
    idx = torch.empty(len(coords), len(coords), dtype=torch.int64)
    for a, (d0, h0, w0) in enumerate(coords):
        for b, (d1, h1, w1) in enumerate(coords):
            idx[a, b] = (d0 - d1 + WS - 1) * span * span + (h0 - h1 + WS - 1) * span + (w0 - w1 + WS - 1)
    return idx


def reference_mask(dp, hp, wp, dtype):
    img = torch.zeros(1, dp, hp, wp, 1, dtype=dtype)
    cnt = 0
    cuts = (slice(0, -WS), slice(-WS, -SHIFT), slice(-SHIFT, None))
    for sd in cuts:
        for sh in cuts:
            for sw in cuts:
                img[:, sd, sh, sw, :] = cnt
                cnt += 1
    win = img.view(1, dp // WS, WS, hp // WS, WS, wp // WS, WS, 1).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, WS ** 3)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


def reference_block(P, p, t, dims, shift, mask, heads):
    b, length, c = t.shape
    d, h, w = dims
    shortcut = t
    x = F.layer_norm(t, (c,), P[p + "norm1.weight"], P[p + "norm1.bias"]).view(b, d, h, w, c)
    dp, hp, wp = (ceil(s / WS) * WS for s in dims)
    x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h, 0, dp - d))
    if shift:
        x = torch.roll(x, shifts=(-SHIFT, -SHIFT, -SHIFT), dims=(1, 2, 3))
    win = x.view(b, dp // WS, WS, hp // WS, WS, wp // WS, WS, c).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, WS ** 3, c)
    bw, n, _ = win.shape
    qkv = F.linear(win, P[p + "attn.qkv.weight"], P.get(p + "attn.qkv.bias"))
    qkv = qkv.reshape(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (c // heads) ** -0.5, qkv[1], qkv[2]
    attn = q @ k.transpose(-2, -1)
    table = P[p + "attn.relative_position_bias_table"]
    attn = attn + table[reference_index().view(-1)].view(n, n, heads).permute(2, 0, 1).unsqueeze(0)
    if shift:
        nw = mask.shape[0]
        attn = (attn.view(bw // nw, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(bw, heads, n, n)
    attn = attn.softmax(-1)
    y = (attn @ v).transpose(1, 2).reshape(bw, n, c)
    y = F.linear(y, P[p + "attn.proj.weight"], P[p + "attn.proj.bias"])
    # SMIT's window reverse: the partition permutation applied again (not its inverse).
    y = y.view(b, dp // WS, hp // WS, wp // WS, WS, WS, WS, c).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, dp, hp, wp, c)
    if shift:
        y = torch.roll(y, shifts=(SHIFT, SHIFT, SHIFT), dims=(1, 2, 3))
    y = y[:, :d, :h, :w, :].reshape(b, length, c)
    t = shortcut + y
    z = F.layer_norm(t, (c,), P[p + "norm2.weight"], P[p + "norm2.bias"])
    z = F.linear(F.gelu(F.linear(z, P[p + "mlp.fc1.weight"], P[p + "mlp.fc1.bias"])), P[p + "mlp.fc2.weight"],
                 P[p + "mlp.fc2.bias"])
    return t + z


def reference_encoder(state, x, depths, heads):
    """SMIT encoder on ``x (B, C, D, H, W)`` (its own axis order): ([norm_i(stage i tokens)], bottleneck)."""
    P = {k[len("transformer."):]: v for k, v in state.items()}
    y = F.conv3d(x, P["patch_embed.proj.weight"], P["patch_embed.proj.bias"], stride=2)
    b, c, d, h, w = y.shape
    t = F.layer_norm(y.flatten(2).transpose(1, 2), (c,), P["patch_embed.norm.weight"], P["patch_embed.norm.bias"])
    outs = []
    for i, (depth, nh) in enumerate(zip(depths, heads)):
        mask = reference_mask(*(ceil(s / WS) * WS for s in (d, h, w)), x.dtype)
        for j in range(depth):
            t = reference_block(P, f"layers.{i}.blocks.{j}.", t, (d, h, w), j % 2 == 1, mask, nh)
        o = F.layer_norm(t, (c,), P[f"norm{i}.weight"], P[f"norm{i}.bias"])
        outs.append(o.view(b, d, h, w, c).permute(0, 4, 1, 2, 3))
        g = t.view(b, d, h, w, c)
        g = torch.cat([g[:, i0::2, i1::2, i2::2, :] for i0, i1, i2 in MERGE], -1).view(b, -1, 8 * c)
        pm = f"layers.{i}.downsample."
        g = F.layer_norm(g, (8 * c,), P[pm + "norm.weight"], P[pm + "norm.bias"])
        t = F.linear(g, P[pm + "reduction.weight"])
        d, h, w, c = d // 2, h // 2, w // 2, 2 * c
    return outs, t.view(b, d, h, w, c).permute(0, 4, 1, 2, 3)


def smit_net(embed, depths, heads, dtype=torch.float64, classes=2, **extra):
    kw = get_preset("smit")
    kw.update(embed_dim=embed, decoder_features=embed, depths=list(depths), num_heads=list(heads), **extra)
    return SwinSegmentationNetwork(1, classes, **kw).to(dtype).eval()


TINY = dict(embed=12, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4))


@pytest.mark.parametrize("shape", [(128, 128, 128), (96, 64, 128)])
def test_smit_encoder_matches_reference(shape):
    """(Z, Y, X) 128^3 and an anisotropic size whose deepest map (8x4x6 in X, Y, Z) needs window padding."""
    state = smit_state(TINY["embed"], TINY["depths"], TINY["heads"])
    net = smit_net(**TINY)
    report = load_pretrained_encoder(net, {"state_dict": state})
    assert report.complete and not report.adapted
    x = torch.randn(1, 1, *shape, dtype=torch.float64)
    xp = x.permute(0, 1, 4, 3, 2)
    with torch.no_grad():
        mine = net.encoder(xp)
        outs, bottleneck = reference_encoder(state, xp, TINY["depths"], TINY["heads"])
    for a, b in zip(mine, outs + [bottleneck]):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 1e-10


def test_smit_window_reverse_quirk_matters():
    """With the true inverse the encoder computes something else: the quirk is reproduced, not ignored."""
    state = smit_state(TINY["embed"], TINY["depths"], TINY["heads"], seed=1)
    faithful, fixed = smit_net(**TINY), smit_net(**TINY, window_reverse="inverse")
    load_pretrained_encoder(faithful, state)
    load_pretrained_encoder(fixed, state)
    x = torch.randn(1, 1, 64, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        ref = reference_encoder(state, x, TINY["depths"], TINY["heads"])[1]
        assert (faithful.encoder(x)[4] - ref).abs().max().item() < 1e-10
        assert (fixed.encoder(x)[4] - ref).abs().max().item() > 1e-3


def test_smit_network_uses_smit_taps_in_the_decoder():
    """Whole SMIT network = reference encoder + the MONAI decoder blocks wired as SMIT_3D_Seg wires them."""
    state = smit_state(TINY["embed"], TINY["depths"], TINY["heads"], seed=2)
    net = smit_net(**TINY, classes=3)
    load_pretrained_encoder(net, state)
    torch.manual_seed(0)
    ref = monai_nets.SwinUNETR(1, 3, feature_size=TINY["embed"]).to(torch.float64).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    decoder_state = {k: v for k, v in ref.state_dict().items() if not k.startswith("swinViT.")}
    net.decoder.load_state_dict(decoder_state, strict=True)
    x = torch.randn(1, 1, 32, 32, 64, dtype=torch.float64)
    xp = x.permute(0, 1, 4, 3, 2)
    with torch.no_grad():
        outs, bottleneck = reference_encoder(state, xp, TINY["depths"], TINY["heads"])
        enc0, enc1, enc2, enc3 = ref.encoder1(xp), ref.encoder2(outs[0]), ref.encoder3(outs[1]), ref.encoder4(outs[2])
        dec = ref.decoder5(ref.encoder10(bottleneck), outs[3])
        dec = ref.decoder1(ref.decoder2(ref.decoder3(ref.decoder4(dec, enc3), enc2), enc1), enc0)
        expected = ref.out(dec).permute(0, 1, 4, 3, 2)
        got = net(x)
    assert (got - expected).abs().max().item() < 1e-10


@pytest.mark.slow
def test_full_smit128_config_matches_reference_float32():
    cfg = get_preset("smit")
    state = smit_state(48, cfg["depths"], cfg["num_heads"], dtype=torch.float32)
    net = smit_net(48, cfg["depths"], cfg["num_heads"], dtype=torch.float32)
    load_pretrained_encoder(net, state)
    x = torch.randn(1, 1, 128, 128, 128)
    with torch.no_grad():
        mine = net.encoder(x)
        outs, bottleneck = reference_encoder(state, x, cfg["depths"], cfg["num_heads"])
    for a, b in zip(mine, outs + [bottleneck]):
        assert (a - b).abs().max().item() < 1e-4 * max(1.0, b.abs().max().item())
