"""The spine variant (multi-scale fusion + adaptive attention) as switches of the one Swin core: identity at
initialisation with pretrained weights, the adapters' report, the fused path, the ADI probe."""
import pytest
import torch

from nnunet_swin.analysis.attention_dilution import AttentionDilutionMeter
from nnunet_swin.errors import UserError
from nnunet_swin.networks import SwinSegmentationNetwork
from nnunet_swin.networks.weights import load_pretrained_encoder
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.workflows.standin_checkpoint import standin_encoder_state


def _pair():
    """A plain and a variant tiny Swin UNETR, both loaded from the same NVIDIA-layout checkpoint, same decoder."""
    state = standin_encoder_state(get_preset("swin_unetr_tiny"), seed=3)
    torch.manual_seed(5)
    plain = SwinSegmentationNetwork(1, 3, **get_preset("swin_unetr_tiny")).eval()
    variant = SwinSegmentationNetwork(1, 3, **get_preset("swin_unetr_msf_tiny")).eval()
    reports = [load_pretrained_encoder(net, state) for net in (plain, variant)]
    variant.decoder.load_state_dict(plain.decoder.state_dict())
    return plain, variant, reports


def test_pretrained_weights_in_the_variant_compute_the_plain_network():
    plain, variant, (plain_report, variant_report) = _pair()
    assert variant_report.complete and not plain_report.new
    assert variant_report.new and all(".fusion." in k or ".key_score." in k for k in variant_report.new)
    assert variant_report.matched == plain_report.matched               # every encoder key loaded, none missing
    assert "new" in variant_report.summary().splitlines()[0]
    x = torch.randn(1, 1, 32, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(variant(x), plain(x), rtol=0, atol=0)
        meter = AttentionDilutionMeter()
        meter.start_batch(["c"])
        with variant.encoder.attention_probe(meter):                   # the probe (explicit) path too
            probed = variant(x)
    torch.testing.assert_close(probed, plain(x), rtol=1e-5, atol=1e-5)


def test_trained_variant_paths_agree_and_the_probe_sees_the_key_scores():
    _, variant, _ = _pair()
    torch.manual_seed(0)
    with torch.no_grad():  # "training moved it": non-zero key scores and fusion projections
        for name, p in variant.named_parameters():
            if ".key_score." in name or ".fusion." in name:
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(1, 1, 32, 64, 64)
    mask = torch.ones(1, 32, 64, 64, dtype=torch.bool)
    mask[:, 20:] = False
    with torch.no_grad():
        fused = variant(x, mask)
        meter = AttentionDilutionMeter()
        meter.start_batch(["c"])
        with variant.encoder.attention_probe(meter):
            explicit = variant(x, mask)
    torch.testing.assert_close(explicit, fused, rtol=1e-4, atol=1e-4)
    stages = meter.results()["c"]
    assert len(stages) == 4 and all(0.0 <= s.adi <= 1.0 for s in stages.values())


def test_a_variant_checkpoint_into_the_plain_backbone_is_refused():
    _, variant, _ = _pair()
    plain = SwinSegmentationNetwork(1, 3, **get_preset("swin_unetr_tiny"))
    with pytest.raises(UserError, match="spine variant"):
        load_pretrained_encoder(plain, {"network_weights": variant.state_dict()})
