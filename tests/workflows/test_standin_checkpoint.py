"""Stand-in checkpoints: public layouts that the real adapters load completely."""
import pytest
import torch

from nnunet_swin.networks import load_pretrained_encoder
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
from nnunet_swin.workflows.standin_checkpoint import standin_encoder_state, write_standin_checkpoint


def test_smit_layout_is_the_original_repositorys_bare_dict():
    state = standin_encoder_state(get_preset("smit_tiny"))
    assert "norm0.weight" in state and "patch_embed.proj.weight" in state
    assert "layers.0.blocks.0.attn.relative_position_index" in state
    assert not any(k.startswith(("skip_norms", "encoder.", "module.")) for k in state)


def test_swin_unetr_layout_is_model_swinvit():
    obj = standin_encoder_state(get_preset("swin_unetr_tiny"))
    assert set(obj) == {"state_dict"}
    keys = list(obj["state_dict"])
    assert all(k.startswith("module.") for k in keys)
    assert "module.layers1.0.blocks.0.attn.qkv.weight" in keys and "module.layers4.0.downsample.norm.weight" in keys


@pytest.mark.parametrize("backbone", ["smit_tiny", "swin_unetr_tiny"])
def test_written_file_loads_completely_and_is_seeded(tmp_path, backbone):
    path = write_standin_checkpoint(get_preset(backbone), tmp_path / f"{backbone}.pth", seed=3)
    assert not list(tmp_path.glob("*.tmp"))
    net = SwinSegmentationNetwork(1, 2, **get_preset(backbone))
    report = load_pretrained_encoder(net, path)
    assert report.complete
    again = standin_encoder_state(get_preset(backbone), seed=3)
    first = torch.load(path, weights_only=True)
    a = first.get("state_dict", first)
    b = again.get("state_dict", again)
    assert all(torch.equal(a[k], b[k]) for k in a)
