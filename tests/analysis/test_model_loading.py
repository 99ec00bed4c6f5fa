"""Analysis restores a trained model folder as nnU-Net's predictor does: same trainer class, same network, same logits.

The reference is ``nnUNetPredictor.initialize_from_trained_model_folder`` (what ``nnUNetv2_predict`` runs), with
``nnUNet_extTrainer`` exported as ``nnunet-swin env`` prints it; the analysis itself needs no export.
"""
import ast
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from model_folder import write_model_folder  # noqa: E402

from nnunet_swin.analysis.model_loading import find_trainer_class, load_model_folder  # noqa: E402
from nnunet_swin._nnunet_ext import ext_trainer_dir  # noqa: E402
from nnunet_swin.errors import UserError  # noqa: E402

PEERS = ("trainers", "planners", "evaluation", "pretraining", "workflows", "cli")


def _padded_input() -> torch.Tensor:
    """(1, 1, 32, 64, 64): a scan 20 slices deep, centred, the rest nnU-Net's padding value 0."""
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(1, 1, 32, 64, 64)
    x[:, :, 6:26] = torch.randn(1, 1, 20, 64, 64, generator=g)
    return x


def _predictor_network(folder: Path, monkeypatch) -> torch.nn.Module:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    monkeypatch.setenv("nnUNet_extTrainer", str(ext_trainer_dir()))
    ref = nnUNetPredictor(perform_everything_on_device=False, device=torch.device("cpu"))
    ref.initialize_from_trained_model_folder(str(folder), (0,), "checkpoint_final.pth")
    return ref.network.eval()


@pytest.mark.parametrize("trainer", ["nnUNetTrainer", "SwinMaskedTrainer"])
def test_same_logits_as_nnunet_predictor(tmp_path, monkeypatch, trainer):
    folder = write_model_folder(tmp_path, trainer=trainer)
    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    model = load_model_folder(folder)
    assert "nnUNet_extTrainer" not in os.environ          # found without the export, and none was set
    assert model.trainer_name == trainer and model.predictor.allowed_mirroring_axes == (0, 1, 2)
    reference = _predictor_network(folder, monkeypatch)
    assert type(model.network) is type(reference)
    x = _padded_input()
    with torch.no_grad():
        ours, theirs = model.network(x), reference(x)
    assert ours.shape == (1, 2, 32, 64, 64)
    assert torch.equal(ours, theirs)


def test_masked_trainer_network_excludes_padding(tmp_path):
    """Same weights, the Masked trainer's network: padding excluded, so other logits on a padded input."""
    plain = load_model_folder(write_model_folder(tmp_path / "a", trainer="nnUNetTrainer")).network
    masked = load_model_folder(write_model_folder(tmp_path / "b", trainer="SwinMaskedTrainer")).network
    assert masked.encoder.exclude_padding_keys and not plain.encoder.exclude_padding_keys
    x = _padded_input()
    with torch.no_grad():
        assert (plain(x) - masked(x)).abs().max() > 1e-3


def test_trainer_lookup_is_nnunets_then_our_shim(monkeypatch):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    assert find_trainer_class("nnUNetTrainer") is nnUNetTrainer
    masked = find_trainer_class("SwinMaskedTrainer")
    assert masked.__module__ == "nnunet_swin.trainers.variants"      # the importable original, not a shim copy
    with pytest.raises(UserError, match="no trainer class 'NoSuchTrainer'"):
        find_trainer_class("NoSuchTrainer")


def test_checkpoint_problems_are_user_errors(tmp_path):
    folder = write_model_folder(tmp_path)
    with pytest.raises(UserError, match="trained as configuration '3d_fullres', not '3d_cubic'"):
        load_model_folder(folder, configuration="3d_cubic")
    ckpt = folder / "fold_0" / "checkpoint_final.pth"
    saved = torch.load(ckpt, weights_only=False)
    torch.save({**saved, "trainer_name": "NoSuchTrainer"}, ckpt)
    with pytest.raises(UserError, match="no trainer class 'NoSuchTrainer'"):
        load_model_folder(folder)
    weights = dict(saved["network_weights"])
    weights.pop(next(iter(weights)))
    torch.save({**saved, "network_weights": weights}, ckpt)
    with pytest.raises(UserError, match="does not match the network its trainer builds"):
        load_model_folder(folder)


def test_analysis_imports_no_peer():
    """The analysis package imports no other peer (DESIGN.md layering), e.g. not our trainers. (Evaluation's pure
    metrics are a declared floor; none is used here today: name such a module as allowed when one is.)"""
    crossings = []
    for path in sorted((Path(__file__).parents[2] / "nnunet_swin" / "analysis").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            crossings += [f"{path.name}: {n}" for n in names if n.split(".")[:2] in
                          (["nnunet_swin", p] for p in PEERS)]
    assert not crossings, crossings
