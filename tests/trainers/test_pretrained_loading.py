"""The trainer's pretrained-encoder path with the real network and adapters, on stand-in public-layout checkpoints."""
import pytest
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.networks import SwinEncoder
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.trainers import SwinACTTrainer
from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint


def preset_encoder_keys(preset: str) -> set[str]:
    """The encoder's own state-dict keys for a preset, minus derived buffers (relative-position indices)."""
    kw = get_preset(preset)
    with torch.device("meta"):
        encoder = SwinEncoder(1, **{k: v for k, v in kw.items() if k in ENCODER_KEYS})
    return {k for k in encoder.state_dict() if not k.endswith("relative_position_index")}


@pytest.fixture
def trainer(trainer_factory):
    t = trainer_factory(SwinACTTrainer)
    t.initialize()  # builds the real (tiny SMIT) network from the plans
    return t


def test_a_fitting_checkpoint_is_loaded_into_the_encoder_and_reported(trainer, nnunet_dirs, monkeypatch, capsys):
    path = write_standin_checkpoint(get_preset("smit_tiny"), nnunet_dirs / "weights" / "smit_tiny.pth", seed=7)
    monkeypatch.setenv("nnUNet_swin_pretrained", str(nnunet_dirs / "weights"))
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    report = trainer.load_pretrained_encoder()
    after = trainer.network.state_dict()
    saved = torch.load(path, weights_only=True)
    assert torch.equal(after["encoder.patch_embed.proj.weight"], saved["patch_embed.proj.weight"])
    assert torch.equal(after["encoder.skip_norms.0.weight"], saved["norm0.weight"])
    assert not torch.equal(before["encoder.patch_embed.proj.weight"], after["encoder.patch_embed.proj.weight"])
    decoder = [k for k in after if k.startswith("decoder.")]
    assert decoder and all(torch.equal(before[k], after[k]) for k in decoder)  # the decoder stays random
    # every encoder key of the preset is matched as it is (derived index buffers are not state)
    encoder_keys = preset_encoder_keys("smit_tiny")
    assert set(report.matched) == encoder_keys and report.complete and not report.adapted
    assert f"{len(encoder_keys)} matched, 0 adapted, 0 missing, 0 unexpected" in capsys.readouterr().out
    # the optimizer still holds the very parameter objects that were filled in place
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(trainer.network.encoder.patch_embed.proj.weight) in opt_params


def test_missing_checkpoint(trainer, nnunet_dirs, monkeypatch):
    monkeypatch.setenv("nnUNet_swin_pretrained", str(nnunet_dirs / "nothing_here.pth"))
    with pytest.raises(UserError, match="does not exist"):
        trainer.load_pretrained_encoder()


def test_corrupt_checkpoint(trainer, nnunet_dirs, monkeypatch):
    bad = nnunet_dirs / "smit_tiny.pth"
    bad.write_bytes(b"this is not a torch checkpoint")
    monkeypatch.setenv("nnUNet_swin_pretrained", str(bad))
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        trainer.load_pretrained_encoder()


def test_other_backbone_checkpoint(trainer, nnunet_dirs, monkeypatch):
    path = write_standin_checkpoint(get_preset("swin_unetr_tiny"), nnunet_dirs / "smit_tiny.pth")
    monkeypatch.setenv("nnUNet_swin_pretrained", str(path))
    with pytest.raises(UserError, match="Swin UNETR checkpoint"):
        trainer.load_pretrained_encoder()


def test_checkpoint_of_another_size(trainer, nnunet_dirs, monkeypatch):
    other = {**get_preset("smit_tiny"), "depths": [1, 2, 1, 1]}  # one block more than the plans' network
    path = write_standin_checkpoint(other, nnunet_dirs / "smit_tiny.pth")
    monkeypatch.setenv("nnUNet_swin_pretrained", str(path))
    with pytest.raises(UserError):
        trainer.load_pretrained_encoder()
