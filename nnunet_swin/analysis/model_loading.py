"""Loading our models and raw images for analysis, exactly as nnU-Net's predictor does.

- A trained model folder ``nnUNet_results/DatasetXXX/<Trainer>__<Plans>__<config>`` (``plans.json``,
  ``dataset.json``, ``fold_N/checkpoint_*.pth``): the network is rebuilt from the plans with nnU-Net's
  ``get_network_from_plans`` (``PlansManager`` / ``ConfigurationManager``) and ``network_weights`` are loaded.
- A backbone only: the same plans configuration, random weights, then the pretrained encoder checkpoint.
- Raw images are preprocessed with the configuration's ``preprocessor_class(...).run_case(...)`` (transpose,
  crop to non-zero, normalise, resample), so arrays come out (C, Z, Y, X) in the network's axis order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nnunet_swin.errors import UserError

OUR_NETWORK_PREFIX = "nnunet_swin."


@dataclass
class LoadedModel:
    network: torch.nn.Module
    plans_manager: object            # nnunetv2 PlansManager
    configuration_manager: object    # nnunetv2 ConfigurationManager
    configuration: str
    dataset_json: dict
    num_input_channels: int
    source: str                      # where the weights came from, for reports

    @property
    def patch_size(self) -> list[int]:
        return [int(s) for s in self.configuration_manager.patch_size]

    @property
    def arch_kwargs(self) -> dict:
        return dict(self.configuration_manager.network_arch_init_kwargs)


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise UserError(f"{path} not found; {what}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e})")


def _build(plans: dict, dataset_json: dict, configuration: str, source: str, trainer=None) -> LoadedModel:
    """The network of a plans configuration; built by ``trainer.build_network_architecture`` when a trainer class of
    ours is given (as stock ``nnUNetv2_predict`` builds it), else straight from the plans."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    pm = PlansManager(plans)
    if configuration not in plans.get("configurations", {}):
        raise UserError(f"configuration {configuration!r} is not in plans {pm.plans_name}; it has "
                        f"{', '.join(plans.get('configurations', {}))}")
    cm = pm.get_configuration(configuration)
    arch = cm.network_arch_class_name
    if not str(arch).startswith(OUR_NETWORK_PREFIX):
        raise UserError(f"plans {pm.plans_name} / {configuration} use network {arch}, not one of ours "
                        f"({OUR_NETWORK_PREFIX}...); ADI and CKA need a Swin model planned with "
                        f"`nnunet-swin plan_and_preprocess -pl SMITPlanner` (or SwinUNETRPlanner)")
    if len(cm.patch_size) != 3:
        raise UserError(f"configuration {configuration!r} is {len(cm.patch_size)}-D; the analysis needs a 3-D one")
    in_ch = determine_num_input_channels(pm, cm, dataset_json)
    out_ch = pm.get_label_manager(dataset_json).num_segmentation_heads
    if trainer is not None:
        net = trainer.build_network_architecture(pm, cm, in_ch, out_ch, False)
    else:
        net = get_network_from_plans(arch, cm.network_arch_init_kwargs, cm.network_arch_init_kwargs_req_import,
                                     in_ch, out_ch, allow_init=True, deep_supervision=False)
    return LoadedModel(net.eval(), pm, cm, configuration, dataset_json, in_ch, source)


def _strip_prefixes(state: dict) -> dict:
    """The state dict with wrapper prefixes (``module.``, ``_orig_mod.``) removed, by the checkpoint adapters' rule."""
    from nnunet_swin.networks.weights import strip_key_prefixes
    return {strip_key_prefixes(k): v for k, v in state.items()}


def _our_trainer(trainer_name: str):
    """The trainer class a model was trained with, so its network is built as stock ``nnUNetv2_predict`` builds it
    (e.g. ``SwinMaskedTrainer`` excludes input padding from attention). Our trainers are looked up first, then
    nnU-Net's own search (``nnUNet_extTrainer``); None for a trainer that is not a subclass of our recipe or that
    cannot be found (the plans' network is built then)."""
    from nnunet_swin import trainers

    cls = getattr(trainers, trainer_name, None)
    if cls is None:
        from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
        try:
            cls = recursive_find_trainer_class_by_name(trainer_name)
        except (RuntimeError, AssertionError):
            return None
    return cls if isinstance(cls, type) and issubclass(cls, trainers.SwinBaseTrainer) else None


def load_model_folder(folder: str | Path, fold: int | str = 0, checkpoint: str = "checkpoint_final.pth",
                      configuration: str | None = None) -> LoadedModel:
    """Rebuild a trained model of ours from its nnU-Net results folder and load one fold's weights."""
    folder = Path(folder)
    plans = _read_json(folder / "plans.json", "give the trained model folder <Trainer>__<Plans>__<configuration> "
                                              "that holds plans.json, dataset.json and fold_N/")
    dataset_json = _read_json(folder / "dataset.json", "the model folder must hold the dataset.json nnU-Net copies there")
    ckpt_path = folder / f"fold_{fold}" / checkpoint
    if not ckpt_path.is_file():
        folds = sorted(p.name for p in folder.glob("fold_*"))
        raise UserError(f"{ckpt_path} not found (folds present: {', '.join(folds) or 'none'}); pass --fold / "
                        f"--checkpoint")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "network_weights" not in ckpt:
        raise UserError(f"{ckpt_path} is not an nnU-Net checkpoint (no 'network_weights')")
    if configuration is None:
        configuration = (ckpt.get("init_args") or {}).get("configuration") or folder.name.split("__")[-1]
    model = _build(plans, dataset_json, configuration, source=str(ckpt_path),
                   trainer=_our_trainer(ckpt.get("trainer_name") or folder.name.split("__")[0]))
    missing, unexpected = model.network.load_state_dict(_strip_prefixes(ckpt["network_weights"]), strict=False)
    if missing or unexpected:
        raise UserError(f"{ckpt_path} does not match the network the plans describe: {len(missing)} missing "
                        f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}) keys")
    return model


def load_backbone(plans_file: str | Path, dataset_json_file: str | Path, configuration: str,
                  pretrained: str | Path | None = None, allow_partial: bool = False) -> LoadedModel:
    """The network a plans configuration describes, with a pretrained encoder (or random weights if None)."""
    plans = _read_json(Path(plans_file), "give the nnU-Net plans file (nnUNet_preprocessed/DatasetXXX/<Plans>.json)")
    dataset_json = _read_json(Path(dataset_json_file), "give the dataset's dataset.json")
    model = _build(plans, dataset_json, configuration, source=str(pretrained) if pretrained else "random weights")
    if pretrained is not None:
        from nnunet_swin.networks import load_pretrained_encoder
        if not Path(pretrained).is_file():
            raise UserError(f"pretrained checkpoint {pretrained} not found")
        load_pretrained_encoder(model.network, str(pretrained), allow_partial=allow_partial)
    return model


def preprocess_case(model: LoadedModel, image_files: list[Path],
                    label_file: Path | None = None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """nnU-Net's predictor preprocessing of one case: (C, Z, Y, X) float32 data, optional seg, properties."""
    pre = model.configuration_manager.preprocessor_class(verbose=False)
    data, seg, props = pre.run_case([str(f) for f in image_files], str(label_file) if label_file else None,
                                    model.plans_manager, model.configuration_manager, model.dataset_json)
    if data.shape[0] != model.num_input_channels:
        raise UserError(f"{image_files[0].name}: {data.shape[0]} channels after reading, the model takes "
                        f"{model.num_input_channels}")
    return np.asarray(data, dtype=np.float32), seg, props


def read_image_and_label(image_files: list[Path], label_file: Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Raw (no preprocessing) image (C, Z, Y, X), label (Z, Y, X) and spacing (z, y, x) mm via SimpleITKIO."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    io = SimpleITKIO()
    img, props = io.read_images([str(f) for f in image_files])
    seg, _ = io.read_seg(str(label_file))
    if seg.shape[1:] != img.shape[1:]:
        raise UserError(f"{label_file.name}: label shape {seg.shape[1:]} differs from image shape {img.shape[1:]}")
    return img, seg[0], tuple(float(s) for s in props["spacing"])


def load_model(folder: str | Path | None = None, fold: int | str = 0, checkpoint: str = "checkpoint_final.pth",
               configuration: str | None = None, plans: str | Path | None = None,
               dataset_json: str | Path | None = None, pretrained: str | Path | None = None) -> LoadedModel:
    """Either a trained model folder, or plans + dataset.json + configuration (+ a pretrained encoder)."""
    if folder is not None:
        if plans is not None or pretrained is not None:
            raise UserError("give either a trained model folder or --plans/--dataset-json/--pretrained, not both")
        return load_model_folder(folder, fold, checkpoint, configuration)
    if plans is None or dataset_json is None or configuration is None:
        raise UserError("without a model folder, give --plans, --dataset-json and -c CONFIGURATION "
                        "(and --pretrained for a pretrained encoder)")
    return load_backbone(plans, dataset_json, configuration, pretrained)
