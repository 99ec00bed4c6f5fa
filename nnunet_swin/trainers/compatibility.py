"""Checks that a plans configuration suits our trainers: our network, a foreground label, the intended geometry."""
from __future__ import annotations

from nnunet_swin.errors import UserError
from nnunet_swin.networks.presets import NETWORK_CLASS_NAME

GEOMETRY_KINDS = ("anisotropic", "cubic")


def require_swin_network(network_class_name: str, plans_name: str, configuration: str) -> None:
    """``UserError`` unless the configuration builds nnunet-swin's segmentation network."""
    if network_class_name != NETWORK_CLASS_NAME:
        raise UserError(
            f"plans {plans_name!r}, configuration {configuration!r} build {network_class_name!r}, not nnunet-swin's "
            f"{NETWORK_CLASS_NAME}; the Swin trainers need plans from our planners: run `nnunet-swin "
            f"plan_and_preprocess -d ID -pl SMITPlanner` (or SwinUNETRPlanner) and train with -p nnUNetSMITPlans "
            f"(or nnUNetSwinUNETRPlans)")


def require_foreground(foreground_labels, dataset_name: str) -> None:
    """``UserError`` when the dataset's label set has no foreground label to segment."""
    if not foreground_labels:
        raise UserError(f"dataset {dataset_name!r} has no foreground label in dataset.json 'labels' (only "
                        f"background); add the tumour label, e.g. \"labels\": {{\"background\": 0, \"tumour\": 1}}")


def geometry_mismatch(configuration_dict: dict, intended_kind: str, trainer_name: str,
                      configuration: str) -> str | None:
    """A warning text when the configuration's ``swin.kind`` differs from the trainer's, else ``None``.

    ``configuration_dict["swin"]["kind"]`` is written by our planners: ``anisotropic`` (ACT crop, ``3d_fullres``) or
    ``cubic`` (the pretrained cube, ``3d_cubic``).
    """
    kind = (configuration_dict.get("swin") or {}).get("kind")
    intended_config = "3d_fullres" if intended_kind == "anisotropic" else "3d_cubic"
    if kind is None:
        return (f"WARNING: configuration {configuration!r} has no 'swin' geometry metadata, so it cannot be checked "
                f"that it is {intended_kind}; {trainer_name} is meant for the {intended_kind} configuration "
                f"({intended_config}) of plans written by `nnunet-swin plan_and_preprocess`")
    if kind != intended_kind:
        return (f"WARNING: {trainer_name} is meant for the {intended_kind} configuration ({intended_config}), but "
                f"configuration {configuration!r} is {kind}. Training goes on, but this is not the paper's recipe "
                f"for this trainer: use `{intended_config}` (or SwinACTTrainer for 3d_fullres, "
                f"SwinBaseTrainer/SwinTATrainer for 3d_cubic)")
    return None
