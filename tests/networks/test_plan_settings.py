"""What a checkpoint asks of the plans: our pretraining metadata, registry entries, and files that are neither."""
import pytest
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.io import save_checkpoint
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.weights.metadata import ADAPTATION_PLAN_KEY, FORMAT, adaptation_plan
from nnunet_swin.networks.weights.plan_settings import plan_settings
from nnunet_swin.networks.weights.registry import REGISTRY


def pretraining_checkpoint(path, backbone="smit_tiny", spacing=(1.5, 1.5, 1.5), crop=64, modality="CT"):
    """A checkpoint laid out as ``nnunet-swin pretrain`` writes it (teacher encoder, metadata, adaptation plan)."""
    intensity = ({"modality": "CT", "scheme": "ct_hu_window", "hu_window": [-175.0, 250.0], "output_range": [0.0, 1.0]}
                 if modality == "CT" else {"modality": "MR", "scheme": "mr_percentile_clip", "lower": "min",
                                           "upper_percentile": 99.0, "output_range": [0.0, 1.0]})
    meta = {"format": FORMAT, "format_version": 1, "method": "smit", "backbone": backbone,
            "arch_kwargs": get_preset(backbone), "in_channels": 1, "crop": crop, "spacing_zyx_mm": list(spacing),
            "intensity": intensity, "epochs": 1, "epochs_completed": 1, "num_volumes": 2, "finished": True,
            "encoder_loaded": "teacher"}
    save_checkpoint(path, {"teacher": {"encoder.patch_embed.proj.weight": torch.zeros(12, 1, 2, 2, 2)},
                           "metadata": meta, ADAPTATION_PLAN_KEY: adaptation_plan(meta)})
    return path


def test_our_checkpoint_gives_its_metadata_and_a_bare_name(tmp_path):
    s = plan_settings(pretraining_checkpoint(tmp_path / "checkpoint_final.pth"))
    assert (s.name, s.backbone, s.spacing_zyx_mm, s.normalization, s.cubic_size, s.modality) == \
        ("checkpoint_final.pth", "smit_tiny", (1.5, 1.5, 1.5), "rescale01", 64, "CT")
    assert str(tmp_path) not in repr(s.record())
    assert s.intensity == "CT, HU window [-175, 250] -> [0, 1]"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registry_entry_gives_a_preset_and_a_cube_its_backbone_can_take(name):
    s = plan_settings(name)
    preset = get_preset(s.backbone)
    assert s.name == name and s.backbone == REGISTRY[name].preset
    assert s.cubic_size % 32 == 0 and preset["family"] == "swin_unetr"
    assert s.normalization == "rescale01"
    assert (s.spacing_zyx_mm is None) == (name in ("nvidia_swinvit", "brainsegfounder_ukb")) and \
        (s.spacing_zyx_mm is not None or s.spacing_note)


def test_registry_values_from_the_reference():
    assert plan_settings("voco_b").spacing_zyx_mm == (1.5, 1.5, 1.5) and plan_settings("voco_b").cubic_size == 64
    assert plan_settings("suprem").cubic_size == 96 and plan_settings("brainsegfounder_ukb").modality == "MR"


def test_a_public_file_is_known_by_its_published_name(tmp_path):
    path = tmp_path / REGISTRY["suprem"].file
    torch.save({"net": {"module.backbone.swinViT.patch_embed.proj.weight": torch.zeros(48, 1, 2, 2, 2)}}, path)
    assert plan_settings(path).name == "suprem"


def test_neither_metadata_nor_registry_is_one_line_saying_what_to_do(tmp_path):
    path = tmp_path / "my_weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(UserError) as e:
        plan_settings(path)
    msg = str(e.value)
    assert "\n" not in msg and "no nnunet-swin pretraining metadata" in msg and "registry name" in msg
    assert "voco_b" in msg and "-overwrite_target_spacing" in msg
    with pytest.raises(UserError, match="no such file and no registry name"):
        plan_settings("voco_x")
