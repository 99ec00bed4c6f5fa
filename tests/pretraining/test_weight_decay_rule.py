"""One weight-decay rule: pretraining's optimiser and fine-tuning's exempt exactly the same encoder parameters."""
import torch

from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
from nnunet_swin.networks.weight_decay import adamw_param_groups
from nnunet_swin.pretraining.data import discover_images
from nnunet_swin.pretraining.trainer import Pretrainer

from pretraining_fixtures import tiny_config


def _exempt_encoder_names(model: torch.nn.Module, groups: list[dict]) -> set[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    spared = [g for g in groups if g["weight_decay"] == 0.0]
    assert len(spared) == 1 and all(g["weight_decay"] > 0 for g in groups if g is not spared[0])
    return {names[id(p)] for p in spared[0]["params"] if names[id(p)].startswith("encoder.")}


def test_pretraining_and_fine_tuning_exempt_the_same_encoder_parameters(ct_folder, tmp_path):
    images, _ = discover_images(str(ct_folder))
    pre = Pretrainer(tiny_config(method="smart"), tmp_path / "out", images, device="cpu", progress=False,
                     log_to_console=False)
    pre.build_models()  # student, teacher and the optimiser the pretraining loop steps (no data needed)
    pretraining = _exempt_encoder_names(pre.student, pre.optimizer.param_groups)
    net = SwinSegmentationNetwork(1, 2, **get_preset(pre.config.backbone))
    fine_tuning = _exempt_encoder_names(net, adamw_param_groups(net, 1e-5))  # what the recipe's AdamW gets
    assert pretraining == fine_tuning == {f"encoder.{n}" for n in net.encoder.no_weight_decay()}
    tables = {n for n in fine_tuning if n.endswith("relative_position_bias_table")}
    assert len(tables) == sum(net.encoder.depths)  # the difference that used to be silent
    decayed = {n for n, _ in net.encoder.named_parameters()} - {n[len("encoder."):] for n in fine_tuning}
    assert decayed and all(n.endswith(".weight") and "norm" not in n for n in decayed)
    # the pretraining heads' own 1-D parameters and the mask token are exempt too
    spared = {id(p) for g in pre.optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert id(pre.student.mask_token) in spared
