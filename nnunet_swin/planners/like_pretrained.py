"""``plan_and_preprocess -like_pretrained CHECKPOINT_OR_NAME``: plan at the values the encoder was pretrained with.

The values come from ``networks.weights.plan_settings`` (our checkpoints' metadata, or the registry of public ones):
backbone preset, target spacing, normalisation, cubic size. Torch-free; nothing here writes a file.

Explicit flags (the rule, also in the README):
- ``-overwrite_target_spacing``, ``-normalization`` and ``-cubic_size`` win over the checkpoint, and the line for that
  value says so (e.g. VoCo was pretrained on 64^3 crops; ``-cubic_size 96`` plans its downstream size);
- ``-backbone`` naming another preset, or ``-pl`` naming a planner of the other family, is refused in one line:
  the weights would not load into that network.

``dataset_disagreements`` lists where the dataset disagrees with the checkpoint (modality from ``dataset.json``
``channel_names``; target spacing more than ``SPACING_FACTOR`` away from the data's median spacing on an axis); the
planner prints them as warnings and records them in the plans.
"""
from __future__ import annotations

from dataclasses import replace

from nnunet_swin.errors import UserError
from nnunet_swin.networks.presets import preset_family
from nnunet_swin.networks.weights.plan_settings import PlanSettings

PLANNER_OF_FAMILY = {"smit": "SMITPlanner", "swin_unetr": "SwinUNETRPlanner"}
SPACING_FACTOR = 2.0      # warn when the target spacing is this many times coarser or finer than the median
MODALITY_WORDS = {"CT": "CT", "MR": "MRI"}


def _mm(spacing) -> str:
    return " x ".join(f"{float(s):g}" for s in spacing) + " mm"


def apply_settings(settings: PlanSettings, options, planner: str | None, overwrite_target_spacing):
    """``(options, planner name, lines)``: ``options`` (a ``SwinPlanOptions``) with the checkpoint's values filled in
    where no flag was given, the planner of the checkpoint's family, and one line per value (and where it came from).
    ``UserError`` for a ``-backbone`` / ``-pl`` the weights cannot load into."""
    family = preset_family(settings.backbone)
    wanted = PLANNER_OF_FAMILY[family]
    head = f"-like_pretrained {settings.name}"
    if planner is not None and planner != wanted:
        raise UserError(f"{head} is a {family} checkpoint (preset {settings.backbone}), -pl {planner} plans "
                        f"{'other' if planner in PLANNER_OF_FAMILY.values() else 'stock'} networks; use -pl {wanted} "
                        f"or leave -pl out")
    if options.backbone is not None and options.backbone != settings.backbone:
        raise UserError(f"{head} loads into preset {settings.backbone}, -backbone {options.backbone} is another "
                        f"network its weights do not fit; leave -backbone out or drop -like_pretrained")
    src = f"from {settings.source}"
    lines = [f"{head}: planner {wanted} and backbone {settings.backbone} {src}"]
    if overwrite_target_spacing is not None:
        said = _mm(settings.spacing_zyx_mm) if settings.spacing_zyx_mm else "none"
        lines.append(f"{head}: target spacing {_mm(overwrite_target_spacing)} from -overwrite_target_spacing "
                     f"(the checkpoint says {said})")
        spacing = None
    elif settings.spacing_zyx_mm is not None:
        spacing = tuple(settings.spacing_zyx_mm)
        lines.append(f"{head}: target spacing {_mm(spacing)} {src}")
    else:
        spacing = None
        lines.append(f"{head}: target spacing not taken ({settings.spacing_note}); the planner's default applies "
                     f"(1 x 1 x 1 mm, or give -overwrite_target_spacing)")
    normalization = options.normalization
    if normalization is not None and normalization != settings.normalization:
        lines.append(f"{head}: normalization {normalization} from -normalization (the encoder saw "
                     f"{settings.intensity}, i.e. {settings.normalization})")
    elif settings.normalization is not None:
        normalization = settings.normalization
        lines.append(f"{head}: normalization {normalization} {src} (the encoder saw {settings.intensity}; "
                     f"nnU-Net's RescaleTo01 scales each image's min..max to [0, 1])")
    elif normalization is None:
        lines.append(f"{head}: normalization not taken (the encoder saw {settings.intensity}, no range we can "
                     f"match); the planner's default applies")
    cubic = options.cubic_size
    if cubic is not None and cubic != settings.cubic_size:
        lines.append(f"{head}: cubic size {cubic} from -cubic_size (the checkpoint was pretrained on "
                     f"{settings.cubic_size}^3)")
    elif settings.cubic_size is not None:
        cubic = settings.cubic_size
        lines.append(f"{head}: cubic size {cubic} {src}")
    taken = replace(options, backbone=settings.backbone, normalization=normalization, cubic_size=cubic,
                    pretraining_spacing=spacing, like_pretrained=settings.record())
    return taken, wanted, lines


def dataset_disagreements(record: dict, dataset_modality: str | None, channel_names, median_spacing,
                          target_spacing) -> list[str]:
    """Where the dataset disagrees with the checkpoint (empty when it does not). ``record``: ``PlanSettings.record()``;
    ``dataset_modality``: ``raw_dataset.folders.dataset_modality``; ``median_spacing`` / ``target_spacing``: mm, in
    the fingerprint's axis order."""
    warnings = []
    name, pre = record["checkpoint"], record.get("modality")
    if pre and dataset_modality and pre != dataset_modality:
        warnings.append(f"{name} was pretrained on {MODALITY_WORDS.get(pre, pre)}, the dataset is "
                        f"{MODALITY_WORDS.get(dataset_modality, dataset_modality)} (dataset.json channel_names "
                        f"{list(channel_names)}); the encoder's features may transfer poorly, compare with "
                        f"SwinScratchTrainer")
    ratios = [float(t) / float(m) for t, m in zip(target_spacing, median_spacing)]
    far = [i for i, r in enumerate(ratios) if r > SPACING_FACTOR or r < 1 / SPACING_FACTOR]
    if far:
        axes = ", ".join(f"axis {i} x{ratios[i]:.2g}" for i in far)
        warnings.append(f"target spacing {_mm(target_spacing)} is far from the data's median spacing "
                        f"{_mm(median_spacing)} ({axes}): the images are resampled by more than a factor "
                        f"{SPACING_FACTOR:g} there")
    return warnings
