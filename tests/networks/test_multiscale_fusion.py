"""Multi-scale fusion: identity at initialisation, the fused sum of the branches, both weight normalisations."""
import pytest
import torch

from nnunet_swin.networks.multiscale_fusion import MultiScaleFusion


def test_identity_at_initialisation_and_gradients_reach_every_part():
    torch.manual_seed(0)
    m = MultiScaleFusion(8)
    x = torch.randn(2, 4, 6, 5, 8, requires_grad=True)
    y = m(x)
    assert torch.equal(y, x)
    y.square().sum().backward()
    assert m.proj.weight.grad.abs().sum() > 0                     # the zero projection learns first
    assert all(b.weight.grad is not None for b in m.branches)


@pytest.mark.parametrize("weights", ["bifpn", "softmax"])
def test_output_is_the_weighted_sum_of_depthwise_branches(weights):
    torch.manual_seed(1)
    m = MultiScaleFusion(4, kernels=(1, 3), weights=weights)
    with torch.no_grad():
        m.fusion_weight.copy_(torch.tensor([2.0, 0.5]))
        m.proj.weight.copy_(torch.eye(4))
    x = torch.randn(1, 5, 5, 5, 4)
    w = torch.softmax(torch.tensor([2.0, 0.5]), 0) if weights == "softmax" else torch.tensor([2.0, 0.5]) / (2.5 + 1e-4)
    y = x.permute(0, 4, 1, 2, 3)
    expected = w[0] * m.branches[0](y) + w[1] * m.branches[1](y)
    torch.testing.assert_close(m(x) - x, expected.permute(0, 2, 3, 4, 1) + m.proj.bias, rtol=1e-5, atol=1e-6)
    assert torch.isclose(m.normalised_weights().sum(), torch.tensor(1.0), atol=1e-3)


def test_bad_switches_are_refused():
    with pytest.raises(ValueError, match="fusion_weights"):
        MultiScaleFusion(4, weights="mean")
    with pytest.raises(ValueError, match="odd"):
        MultiScaleFusion(4, kernels=(2, 3))


def test_one_fused_convolution_matches_the_separate_branches_in_value_and_gradient():
    """The forward runs one depthwise convolution with the summed kernel; it must equal the branches run one by one."""
    torch.manual_seed(2)
    m = MultiScaleFusion(6).double()
    with torch.no_grad():
        m.fusion_weight.copy_(torch.tensor([0.3, 1.2, 0.7]))
        torch.nn.init.normal_(m.proj.weight)
    x = torch.randn(2, 5, 7, 6, 6, dtype=torch.float64, requires_grad=True)

    def separate(x):
        y = x.permute(0, 4, 1, 2, 3)
        w = m.normalised_weights()
        return x + m.proj(sum(w[i] * b(y) for i, b in enumerate(m.branches)).permute(0, 2, 3, 4, 1))

    grads = []
    for fn in (m, separate):
        m.zero_grad()
        x.grad = None
        out = fn(x)
        out.sin().sum().backward()
        grads.append((out.detach(), x.grad.clone(), m.fusion_weight.grad.clone(),
                      [b.weight.grad.clone() for b in m.branches], [b.bias.grad.clone() for b in m.branches]))
    (o1, gx1, gw1, gb1, gbias1), (o2, gx2, gw2, gb2, gbias2) = grads
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(gx1, gx2)
    torch.testing.assert_close(gw1, gw2)
    for a, b in zip(gb1 + gbias1, gb2 + gbias2):
        torch.testing.assert_close(a, b)
