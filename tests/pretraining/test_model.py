"""The pretraining network: mask token at the patch embedding, the encoder's keys unchanged, padding out of pooling."""
import pytest
import torch

from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.pretraining.masking import random_block_mask, to_resolution
from nnunet_swin.pretraining.model import PretrainingNetwork, build_pair

SMALL = dict(out_dim=16, head_hidden=16, head_bottleneck=8)


def test_masked_patch_tokens_become_the_mask_token_and_the_others_stay():
    torch.manual_seed(0)
    net = PretrainingNetwork(get_preset("smit_tiny"), "smit", **SMALL)
    with torch.no_grad():
        net.mask_token.copy_(torch.arange(net.encoder.embed_dim, dtype=torch.float32).view(1, 1, 1, 1, -1))
    seen = []
    net.encoder.patch_embed.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    x = torch.rand(2, 1, 32, 32, 32)
    mask = random_block_mask(2, (2, 2, 2), 0.5, generator=torch.Generator().manual_seed(0))
    net(x, torch.ones(2, 32, 32, 32, dtype=torch.bool), mask)
    masked_tokens = seen[-1]
    plain = net.encoder.patch_embed(x)                         # no mask outside forward
    m = to_resolution(mask, tuple(plain.shape[1:4]))
    assert torch.equal(masked_tokens[m], net.mask_token.detach().view(1, -1).expand(int(m.sum()), -1))
    assert torch.equal(masked_tokens[~m], plain[~m])


def test_encoder_keys_are_those_of_the_fine_tuning_encoder():
    preset = get_preset("smit_tiny")
    student, teacher = build_pair(preset, "smart", **SMALL)
    plain = SwinEncoder(1, **{k: preset[k] for k in ENCODER_KEYS if k in preset})
    assert set(student.encoder.state_dict()) == set(plain.state_dict()) == set(teacher.encoder.state_dict())
    assert "mask_token" in student.state_dict() and "mask_token" not in teacher.state_dict()
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in student.state_dict().items()
               if k in teacher.state_dict())


def test_padding_tokens_are_left_out_of_the_pooled_token_and_the_class_attention():
    torch.manual_seed(0)
    _, teacher = build_pair(get_preset("smit_tiny"), "smart", **SMALL)
    x = torch.rand(1, 1, 32, 32, 32)
    valid = torch.zeros(1, 32, 32, 32, dtype=torch.bool)
    valid[:, :16] = True                                      # half the crop is padding: tokens 4..7 invalid
    out = teacher(x, valid)
    assert out["token_valid"].tolist() == [[True] * 4 + [False] * 4]
    assert torch.all(out["attention"][..., 4:] == 0)
    assert torch.allclose(out["attention"].sum(-1), torch.ones(1, out["attention"].shape[1]))
    pooled = out["tokens"][0, :4].mean(0)
    assert torch.allclose(out["global_logits"][0], teacher.global_head(pooled), atol=1e-6)


@pytest.mark.parametrize("backbone", ["smit_tiny", "swin_unetr_tiny"])
def test_both_backbone_families_pretrain_and_export_a_complete_encoder(backbone):
    from nnunet_swin.networks.weights import load_pretrained_encoder
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
    from nnunet_swin.pretraining.model import encoder_state
    torch.manual_seed(0)
    student, teacher = build_pair(get_preset(backbone), "smart", **SMALL)
    x, v = torch.rand(2, 1, 32, 32, 32), torch.ones(2, 32, 32, 32, dtype=torch.bool)
    s = student(x, v, random_block_mask(2, (2, 2, 2), 0.7))
    t = teacher(x, v)
    assert s["reconstruction"].shape == x.shape and t["patch_logits"].shape == (2, 8, 16)
    report = load_pretrained_encoder(SwinSegmentationNetwork(1, 2, **get_preset(backbone)),
                                     {"teacher": encoder_state(teacher)})
    assert report.complete and not report.missing
