"""Our models and raw images for analysis, restored and preprocessed by nnU-Net's own predictor.

- A trained model folder ``nnUNet_results/DatasetXXX/<Trainer>__<Plans>__<config>`` (``plans.json``,
  ``dataset.json``, ``fold_N/checkpoint_*.pth``) becomes an ``nnUNetPredictor`` (nnunetv2 2.8.1) holding the network
  ``nnUNetv2_predict`` would use: the checkpoint's ``trainer_name`` is looked up by nnU-Net, its
  ``build_network_architecture`` builds the network (so ``SwinMaskedTrainer``'s padding exclusion is on, as in
  prediction) and ``network_weights`` are loaded strictly.
- A backbone only: the plans configuration built by nnU-Net's default trainer, random weights, then the pretrained
  encoder checkpoint.
- Raw images are preprocessed as the predictor's data iterators do (``preprocessor_class(...).run_case(...)``:
  transpose, crop to non-zero, normalise, resample), so arrays come out (C, Z, Y, X) in the network's axis order.

Why not ``initialize_from_trained_model_folder`` itself: it finds the trainer class with
``recursive_find_trainer_class_by_name``, which searches nnU-Net's own trainer folder and then only the folders
named by the environment variable ``nnUNet_extTrainer``. The analysis must work without that export and must not set
``os.environ`` to pass a value, nor import our trainers. So :func:`find_trainer_class` runs nnU-Net's lookup as it
stands and, when that finds nothing, runs nnU-Net's same folder search (``recursive_find_python_class``) on the one
folder the export would have added (``nnunet_swin/_nnunet_ext``, our shim). The class found is built and loaded
with the lines of ``initialize_from_trained_model_folder`` (new signature, ``enable_deep_supervision=False``,
strict ``load_state_dict`` of the first fold) and handed to ``nnUNetPredictor.manual_initialization``.
``tests/analysis/test_model_loading.py`` checks that the network gives the same logits as the one
``initialize_from_trained_model_folder`` restores for the same folder, the Masked trainer included.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json

OUR_NETWORK_PREFIX = "nnunet_swin."


@dataclass
class LoadedModel:
    """An ``nnUNetPredictor`` set up for one model, plus what the analysis reports about it."""
    predictor: object                # nnunetv2 nnUNetPredictor (network, plans/configuration managers, dataset_json)
    configuration: str
    num_input_channels: int
    source: str                      # where the weights came from, for reports

    @property
    def network(self) -> torch.nn.Module:
        return self.predictor.network

    @property
    def plans_manager(self):
        return self.predictor.plans_manager

    @property
    def configuration_manager(self):
        return self.predictor.configuration_manager

    @property
    def dataset_json(self) -> dict:
        return self.predictor.dataset_json

    @property
    def trainer_name(self) -> str | None:
        return self.predictor.trainer_name

    @property
    def patch_size(self) -> list[int]:
        return [int(s) for s in self.configuration_manager.patch_size]

    @property
    def arch_kwargs(self) -> dict:
        return dict(self.configuration_manager.network_arch_init_kwargs)


def _new_predictor():
    """A CPU predictor (analysis moves the network where it runs); its constructor's CPU notice is not printed."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    with contextlib.redirect_stdout(io.StringIO()):
        return nnUNetPredictor(perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)


def _configuration(plans: dict, dataset_json: dict, configuration: str):
    """nnU-Net's managers for a configuration of our Swin network, with input and output channel counts."""
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
    return pm, cm, in_ch, out_ch


def find_trainer_class(trainer_name: str) -> type:
    """The trainer class ``nnUNetv2_predict`` uses for ``trainer_name``: nnU-Net's lookup (its own trainers, then
    ``nnUNet_extTrainer``), then nnU-Net's folder search on our shim folder, the one ``nnunet-swin env`` exports."""
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    from nnunet_swin._nnunet_ext import ext_trainer_dir

    with contextlib.redirect_stdout(io.StringIO()):   # nnU-Net narrates its search
        try:
            return recursive_find_trainer_class_by_name(trainer_name)
        except RuntimeError as e:                      # not in nnU-Net's folder nor in nnUNet_extTrainer
            not_found = e
        folder = str(ext_trainer_dir())
        cls = recursive_find_python_class(folder, trainer_name, None, base_folder=folder,
                                          cleanup_imports_from_base_folder=True)
    if cls is None:
        raise UserError(f"nnU-Net finds no trainer class {trainer_name!r} (its own trainers, nnUNet_extTrainer, "
                        f"nnunet_swin's); the model folder needs the code it was trained with") from not_found
    return cls


def load_model_folder(folder: str | Path, fold: int | str = 0, checkpoint: str = "checkpoint_final.pth",
                      configuration: str | None = None) -> LoadedModel:
    """A trained model of ours restored as ``nnUNetv2_predict -f FOLD -chk CHECKPOINT`` restores it (one fold).
    ``configuration``, if given, must be the checkpoint's own."""
    folder = Path(folder)
    if not (folder / "plans.json").is_file():
        raise UserError(f"{folder} is not a trained model folder (no plans.json); give the folder "
                        f"<Trainer>__<Plans>__<configuration> that holds plans.json, dataset.json and fold_N/")
    plans = read_json(folder / "plans.json", "plans")
    dataset_json = read_json(folder / "dataset.json", "model folder's dataset.json")
    ckpt_path = folder / f"fold_{fold}" / checkpoint
    if not ckpt_path.is_file():
        folds = sorted(p.name for p in folder.glob("fold_*"))
        raise UserError(f"{ckpt_path} not found (folds present: {', '.join(folds) or 'none'}); pass --fold / "
                        f"--checkpoint")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    trained = (ckpt.get("init_args") or {}).get("configuration") if isinstance(ckpt, dict) else None
    if not trained or "network_weights" not in ckpt:
        raise UserError(f"{ckpt_path} is not an nnU-Net checkpoint (no 'network_weights' or "
                        f"'init_args.configuration')")
    if configuration is not None and configuration != trained:
        raise UserError(f"{ckpt_path} was trained as configuration {trained!r}, not {configuration!r}; drop -c "
                        f"for a trained model folder")
    pm, cm, in_ch, out_ch = _configuration(plans, dataset_json, trained)
    if not ckpt.get("trainer_name"):
        raise UserError(f"{ckpt_path} names no trainer ('trainer_name'); nnUNetv2_predict cannot restore it either")
    # as nnUNetPredictor.initialize_from_trained_model_folder does, with the trainer class found above
    network = find_trainer_class(ckpt["trainer_name"]).build_network_architecture(
        pm, cm, in_ch, out_ch, enable_deep_supervision=False)
    try:
        network.load_state_dict(ckpt["network_weights"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[:2]
        raise UserError(f"{ckpt_path} does not match the network its trainer builds from the plans: "
                        f"{' '.join(first)[:300]}") from e
    predictor = _new_predictor()
    predictor.manual_initialization(network.eval(), pm, cm, [ckpt["network_weights"]], dataset_json,
                                    ckpt["trainer_name"], ckpt.get("inference_allowed_mirroring_axes"))
    return LoadedModel(predictor, trained, in_ch, str(ckpt_path))


def load_backbone(plans_file: str | Path, dataset_json_file: str | Path, configuration: str,
                  pretrained: str | Path | None = None, allow_partial: bool = False,
                  seed: int | None = None) -> LoadedModel:
    """The network a plans configuration describes (built by nnU-Net's default trainer), with a pretrained encoder
    (or random weights if None: the network's own initialisation, drawn under ``seed`` when given, without touching
    the caller's random state)."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    plans = read_json(plans_file, "plans file (nnUNet_preprocessed/DatasetXXX/<Plans>.json)")
    dataset_json = read_json(dataset_json_file, "dataset.json")
    pm, cm, in_ch, out_ch = _configuration(plans, dataset_json, configuration)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        network = nnUNetTrainer.build_network_architecture(pm, cm, in_ch, out_ch, enable_deep_supervision=False)
    if pretrained is not None:
        from nnunet_swin.networks import load_pretrained_encoder
        if not Path(pretrained).is_file():
            raise UserError(f"pretrained checkpoint {pretrained} not found")
        load_pretrained_encoder(network, str(pretrained), allow_partial=allow_partial)
    predictor = _new_predictor()
    predictor.manual_initialization(network.eval(), pm, cm, None, dataset_json, nnUNetTrainer.__name__, None)
    return LoadedModel(predictor, configuration, in_ch, str(pretrained) if pretrained else "random weights")


def preprocess_case(model: LoadedModel, image_files: list[Path],
                    label_file: Path | None = None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """One case preprocessed as the predictor's data iterator does it (``preprocess_fromfiles_save_to_queue``):
    (C, Z, Y, X) float32 data, the optional label run through the same steps (Z, Y, X order), properties."""
    p = model.predictor
    pre = p.configuration_manager.preprocessor_class(verbose=p.verbose_preprocessing)
    data, seg, props = pre.run_case([str(f) for f in image_files], str(label_file) if label_file else None,
                                    p.plans_manager, p.configuration_manager, p.dataset_json)
    if data.shape[0] != model.num_input_channels:
        raise UserError(f"{image_files[0].name}: {data.shape[0]} channels after reading, the model takes "
                        f"{model.num_input_channels}")
    return np.asarray(data, dtype=np.float32), seg, props


def read_image_and_label(image_files: list[Path], label_file: Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Raw (no preprocessing) image (C, Z, Y, X), label (Z, Y, X) and spacing (z, y, x) mm via SimpleITKIO."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    io_ = SimpleITKIO()
    img, props = io_.read_images([str(f) for f in image_files])
    seg, _ = io_.read_seg(str(label_file))
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
