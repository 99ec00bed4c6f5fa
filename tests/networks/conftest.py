"""Fixtures of the network tests."""
import pytest
import torch

# MONAI <= 1.4's PatchMerging neighbour order (3D), transcribed from the reference (the order the NVIDIA weights and
# every public Swin UNETR checkpoint were trained with; MONAI 1.5 changed it without changing a key)
LEGACY_OFFSETS = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 0), (0, 0, 1), (1, 1, 1))


def _legacy_merging_forward(self, x):
    d, h, w = x.shape[1:4]
    if d % 2 or h % 2 or w % 2:
        x = torch.nn.functional.pad(x, (0, 0, 0, w % 2, 0, h % 2, 0, d % 2))
    x = torch.cat([x[:, a::2, b::2, c::2, :] for a, b, c in LEGACY_OFFSETS], -1)
    return self.reduction(self.norm(x))


@pytest.fixture
def monai_legacy_merging(monkeypatch):
    """``monai_legacy_merging()`` makes MONAI's ``PatchMerging`` use the legacy order for the rest of the test."""
    import monai.networks.nets.swin_unetr as monai_swin

    def apply():
        monkeypatch.setattr(monai_swin.PatchMerging, "forward", _legacy_merging_forward)
    return apply
