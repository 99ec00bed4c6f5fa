"""Each loss against a hand computation on tiny tensors; centring."""
import math

import pytest
import torch

from nnunet_swin.pretraining.losses import (Centre, cross_entropy, cross_view_distillation, masked_l1,
                                            masked_patch_distillation, teacher_distribution)


def _ce(p, s, tau):
    z = [math.exp(v / tau) for v in s]
    total = sum(z)
    return -sum(pi * math.log(zi / total) for pi, zi in zip(p, z))


def test_masked_l1_counts_only_weighted_voxels():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 1, 4)
    y = torch.tensor([0.0, 0.0, 5.0, 100.0]).view(1, 1, 1, 1, 4)
    w = torch.tensor([1, 0, 1, 0], dtype=torch.bool).view(1, 1, 1, 1, 4)
    assert masked_l1(x, y, w).item() == pytest.approx((1 + 2) / (2 + 1e-5))


def test_teacher_distribution_centres_and_sharpens():
    p = teacher_distribution(torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[0.0, 1.0, 1.0]]), 0.5)
    z = [math.exp(1 / 0.5), math.exp(1 / 0.5), math.exp(3 / 0.5)]
    assert p[0].tolist() == pytest.approx([v / sum(z) for v in z])


def test_cross_entropy_by_hand():
    p, s = [0.2, 0.8], [1.0, -1.0]
    assert cross_entropy(torch.tensor([p]), torch.tensor([s]), 0.1).item() == pytest.approx(_ce(p, s, 0.1), rel=1e-5)


def test_masked_patch_distillation_by_hand():
    # one view, two samples, two tokens, two prototypes
    p = torch.tensor([[[0.5, 0.5], [1.0, 0.0]], [[0.1, 0.9], [0.3, 0.7]]])
    s = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[0.5, 0.5], [3.0, 0.0]]])
    m = torch.tensor([[True, True], [False, False]])              # sample 2 has no masked token: left out,
    expected = (_ce([0.5, 0.5], [1, 0], 0.1) + _ce([1, 0], [0, 2], 0.1)) / 2   # not averaged in as 0
    assert masked_patch_distillation([p], [s], [m], 0.1).item() == pytest.approx(expected, rel=1e-5)
    none = torch.zeros(2, 2, dtype=torch.bool)                    # no target anywhere: 0, still differentiable
    s_grad = s.clone().requires_grad_(True)
    zero = masked_patch_distillation([p], [s_grad], [none], 0.1)
    assert zero.item() == 0.0 and zero.requires_grad
    m2 = torch.tensor([[False, True], [True, False]])              # unmasked tokens never count
    expected2 = (_ce([1, 0], [0, 2], 0.1) + _ce([0.1, 0.9], [0.5, 0.5], 0.1)) / 2
    assert masked_patch_distillation([p], [s], [m2], 0.1).item() == pytest.approx(expected2, rel=1e-5)


def test_cross_view_distillation_pairs_only_different_views():
    p1, p2 = torch.tensor([[0.9, 0.1]]), torch.tensor([[0.2, 0.8]])
    s1, s2 = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    expected = (_ce([0.9, 0.1], [0, 1], 0.1) + _ce([0.2, 0.8], [2, 0], 0.1)) / 2
    assert cross_view_distillation([p1, p2], [s1, s2], 0.1).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        cross_view_distillation([p1], [s1], 0.1)


def test_centre_is_an_ema_of_the_batch_means():
    c = Centre(3, momentum=0.9)
    c.update(torch.tensor([1.0, 2.0, 3.0]))
    assert c.value[0].tolist() == pytest.approx([0.1, 0.2, 0.3])
    c.update(torch.tensor([1.0, 0.0, 0.0]))
    assert c.value[0].tolist() == pytest.approx([0.9 * 0.1 + 0.1, 0.9 * 0.2, 0.9 * 0.3])
    assert "value" in c.state_dict()
