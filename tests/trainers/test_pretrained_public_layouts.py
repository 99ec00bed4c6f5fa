"""Every public checkpoint layout through the stock path: ``SwinACTTrainer_smoke`` finds it via
``nnUNet_swin_pretrained`` (a folder holding ``<backbone>.pt``) and loads it with 0 missing encoder keys."""
import pytest
import torch

from nnunet_swin.networks.presets import get_preset
from nnunet_swin.trainers import SwinACTTrainer_smoke


@pytest.mark.slow
def test_public_layout_loads_through_the_trainer(public_layout, public_checkpoint, trainer_factory, plans_factory,
                                                 nnunet_dirs, monkeypatch, capsys):
    name, preset, _, fmt = public_layout
    plans = plans_factory()
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    arch["arch_kwargs"] = {**get_preset(preset), "strides": arch["arch_kwargs"]["strides"]}
    weights = nnunet_dirs / "weights"
    weights.mkdir()
    torch.save(public_checkpoint(name), weights / f"{preset}.pt")
    monkeypatch.setenv("nnUNet_swin_pretrained", str(weights))
    trainer = trainer_factory(SwinACTTrainer_smoke, plans=plans)
    trainer.initialize()
    report = trainer.load_pretrained_encoder()
    assert report.source_format == fmt and report.complete and report.missing == []
    out = capsys.readouterr().out
    assert f"format {fmt}: " in out and " 0 missing" in out and "patch-merging order" in out
    print(f"{name}: {report.summary().splitlines()[0]}", file=__import__("sys").stderr)
