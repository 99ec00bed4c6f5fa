"""What a checkpoint asks of the plans: our pretraining metadata, registry entries, and files that are neither."""
import pytest
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.weights import read_checkpoint
from nnunet_swin.networks.weights.metadata import ADAPTATION_PLAN_KEY
from nnunet_swin.networks.weights.plan_settings import plan_settings
from nnunet_swin.networks.weights.registry import REGISTRY


def test_our_checkpoint_gives_its_metadata_and_a_bare_name(tmp_path, pretraining_checkpoint):
    path = pretraining_checkpoint(tmp_path / "checkpoint_final.pth")
    s = plan_settings(path)
    assert (s.name, s.backbone, s.spacing_zyx_mm, s.normalization, s.cubic_size, s.modality) == \
        ("checkpoint_final.pth", "smit_tiny", (1.5, 1.5, 1.5), "rescale01", 64, "CT")
    assert str(tmp_path) not in repr(s.record())
    assert s.intensity == "CT, HU window [-175, 250] -> [0, 1]"
    # the adaptation plan travels beside the metadata, loads with weights_only, and names the teacher's key prefix
    obj = read_checkpoint(path)
    plan = obj[ADAPTATION_PLAN_KEY]
    assert all(k.startswith(plan["key_to_encoder"] + ".") for k in obj["teacher"])
    assert next(iter(plan["pretrain_plan"]["configurations"].values()))["spacing"] == [1.5, 1.5, 1.5]


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
