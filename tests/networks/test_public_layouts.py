"""The public Swin checkpoints users have (VoCo, SuPreM, BrainSegFounder, MONAI before/after 1.5, Swin UNETR-V2,
NVIDIA's 128-tensor file), built with the reference's exact keys and shapes (``tests/conftest.py``), onto the presets
of the one Swin core; width refusals; the merge order as a switch, checked against MONAI 1.6.1 and the legacy code."""
from __future__ import annotations

import pytest
import torch
from monai.networks import nets as monai_nets

from nnunet_swin.errors import UserError
from nnunet_swin.networks import SwinEncoder, inspect_checkpoint, load_pretrained_encoder
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.networks.weights import unwrap

def encoder_for(preset: str, in_ch: int = 1, **changes) -> torch.nn.Module:
    kw = {**get_preset(preset), **changes}
    holder = torch.nn.Module()
    holder.encoder = SwinEncoder(in_ch, **{k: v for k, v in kw.items() if k in ENCODER_KEYS})
    return holder


def test_every_public_layout_loads_completely_and_by_value(public_layout, public_checkpoint):
    name, preset, n_tensors, fmt = public_layout
    obj = public_checkpoint(name)
    _, state = unwrap(obj)
    assert len(state) == n_tensors
    in_ch = 2 if name.startswith("brainsegfounder") else 1
    net = encoder_for(preset, in_ch)
    report = load_pretrained_encoder(net, obj)
    assert report.source_format == fmt and report.complete and not report.missing and not report.adapted
    params = net.encoder.state_dict()
    for raw, target in report.renamed.items():
        assert torch.equal(params[target], state[raw]), raw
    assert set(report.renamed.values()) == {k for k in params if not k.endswith("relative_position_index")}
    assert report.merge_order == ("monai16" if preset == "swin_unetr_monai15" else "legacy")


def test_width_and_v2_mismatches_are_refused_in_one_line_naming_both(public_checkpoint):
    voco_l = public_checkpoint("voco_l_ssl_head", meta=True)  # 212 M parameters, shapes only
    with pytest.raises(UserError) as e:
        load_pretrained_encoder(encoder_for("swin_unetr_v2"), voco_l)
    msg = str(e.value)
    assert "\n" not in msg and "Swin UNETR-V2 feature size 96" in msg and "Swin UNETR-V2 feature size 48" in msg
    assert msg.endswith("plan with -backbone swin_unetr_v2_96")
    with pytest.raises(UserError, match=r"Swin UNETR-V2 feature size 48.*network is Swin UNETR feature size 48.*"
                                        r"-backbone swin_unetr_v2$"):
        load_pretrained_encoder(encoder_for("swin_unetr"), public_checkpoint("voco_b_ssl_head"))
    with pytest.raises(UserError, match=r"depths 2-2-6-2 .* depths 2-2-2-2; plan with -backbone swin_unetr_d6"):
        load_pretrained_encoder(encoder_for("swin_unetr"), public_checkpoint("brainsegfounder_64m"))


@pytest.mark.parametrize("size,preset", [("l", "swin_unetr_v2_96"), ("h", "swin_unetr_v2_192")])
def test_inspect_names_source_width_merge_and_unmapped_keys_of_the_large_voco(size, preset, public_checkpoint):
    ins = inspect_checkpoint(public_checkpoint(f"voco_{size}_ssl_head", meta=True))
    assert ins.source_format == "voco_ssl_head" and ins.fits == [preset] and not ins.report.missing
    text = str(ins)
    assert "VoCo_{B,L,H}_SSL_head.pt" in text and f"Swin UNETR-V2 feature size {96 if size == 'l' else 192}" in text
    assert "unmapped keys: none" in text and "patch-merging order legacy: MONAI < 1.5" in text


def test_merge_order_is_declared_never_guessed(public_checkpoint):
    state = public_checkpoint("monai15_swinunetr")
    report = load_pretrained_encoder(encoder_for("swin_unetr_monai15"), state)
    assert report.merge_order == "monai16" and "declared by the preset" in report.merge_reason
    with pytest.raises(UserError, match="trained with patch-merging order 'monai16' but the network uses 'legacy'"):
        load_pretrained_encoder(encoder_for("swin_unetr"), state, merge_order="monai16")
    ours = {"metadata": {"format": "nnunet-swin pretraining", "arch_kwargs": {"merge_order": "monai16"}},
            "teacher": {f"encoder.{k}": v for k, v in encoder_for("swin_unetr_tiny").encoder.state_dict().items()}}
    with pytest.raises(UserError, match="'monai16' but the network uses 'legacy'"):
        load_pretrained_encoder(encoder_for("swin_unetr_tiny"), ours)
    assert inspect_checkpoint(state).fits[0] == "swin_unetr"
    assert inspect_checkpoint(state, merge_order="monai16").fits == ["swin_unetr_monai15"]


@pytest.mark.parametrize("v2", [False, True])
def test_each_merge_order_matches_the_monai_it_claims_and_the_wrong_one_differs(v2, public_checkpoint,
                                                                              monai_legacy_merging):
    """One checkpoint, MONAI 1.6.1 (fixed order) and MONAI 1.6.1 with the legacy forward: each of our two orders
    reproduces its MONAI, and the wrong order changes the deepest features on a fixed input."""
    state = public_checkpoint("monai_swinunetr_v2" if v2 else "monai14_swinunetr")
    preset = "swin_unetr_v2" if v2 else "swin_unetr"
    ref = monai_nets.SwinUNETR(1, 14, feature_size=48, use_v2=v2).eval()
    ref.load_state_dict(state)
    x = torch.randn(1, 1, 64, 64, 64, generator=torch.Generator().manual_seed(0))
    outs = {}
    for order in ("legacy", "monai16"):
        net = encoder_for(preset, merge_order=order).eval()
        load_pretrained_encoder(net, state)
        with torch.no_grad():
            outs[order] = net.encoder(x)[4]
    with torch.no_grad():
        fixed = ref.swinViT(x, True)[4]
        monai_legacy_merging()
        legacy = ref.swinViT(x, True)[4]
    scale = fixed.abs().mean().item()
    right = max((outs["monai16"] - fixed).abs().max().item(), (outs["legacy"] - legacy).abs().max().item())
    wrong = (outs["legacy"] - fixed).abs().max().item()
    print(f"merge order v2={v2}: right-order max |diff| {right:.2e}, wrong-order max |diff| {wrong:.3f} "
          f"(mean |feature| {scale:.3f})")
    assert right < 1e-4 and wrong > 1000 * right


@pytest.mark.parametrize("preset,encoder_and_skips,network_out21", [
    ("swin_unetr_v2", 53_164_146, 72_762_999), ("swin_unetr_v2_96", 211_999_362, 290_392_695),
    ("swin_unetr_v2_192", 847_276_194, 1_160_845_431)])
def test_larger_presets_have_the_parameter_counts_of_the_public_architecture(preset, encoder_and_skips, network_out21):
    """The reference's counts from MONAI 1.6.1 (VoCo SSL-head = encoder + UNETR skip blocks; VoComni = out 21): VoCo's
    README says 53 M / 206 M / 818 M; the architecture gives 53.2 M / 212.0 M / 847.3 M, which these presets match."""
    from nnunet_swin.networks import SwinSegmentationNetwork
    with torch.device("meta"):
        net = SwinSegmentationNetwork(1, 21, **get_preset(preset))
    skips = sum(p.numel() for n, p in net.decoder.named_parameters()
                if n.split(".")[0] in ("encoder1", "encoder2", "encoder3", "encoder4", "encoder10"))
    assert sum(p.numel() for p in net.encoder.parameters()) + skips == encoder_and_skips
    assert sum(p.numel() for p in net.parameters()) == network_out21


def test_the_network_names_its_transfer_surface():
    """``key_to_encoder`` / ``key_to_stem`` / ``keys_to_in_proj`` name real modules; the in-projections are exactly
    the parameters whose shape depends on the input channels."""
    from nnunet_swin.networks import SwinSegmentationNetwork
    with torch.device("meta"):
        one, three = (SwinSegmentationNetwork(c, 2, **get_preset("swin_unetr_tiny")) for c in (1, 3))
    modules = dict(one.named_modules())
    assert one.key_to_encoder in modules and one.key_to_stem in modules
    assert all(k in modules for k in one.keys_to_in_proj)
    changed = {n.rsplit(".", 1)[0] for (n, a), b in zip(one.state_dict().items(), three.state_dict().values())
               if a.shape != b.shape}
    assert changed == set(one.keys_to_in_proj)
