"""Experiment planners for CT-pretrained Swin backbones: nnU-Net's planner with a different geometry.

nnU-Net's own code stays in charge of everything it is used for (fingerprint, normalisation, resampling,
preprocessing, the plans format); this planner decides only the numbers that make a pretrained Swin work:

- target spacing: the backbone's pretraining spacing (isotropic 1 mm, or the checkpoint's with ``-like_pretrained``)
  unless ``-overwrite_target_spacing``;
- ``3d_cubic``: the pretrained cube (SMIT 128^3, Swin UNETR 96^3), the paper's Base;
- ``3d_fullres``: the anisotropic (ACT) crop, in-plane 128 x 128 by default (reduced only when the data are
  smaller) and along z the largest multiple of the size divisor whose mean padding fraction stays at or below a
  threshold (``padding.choose_z_crop``);
- the network is ours (dotted path in ``architecture.network_class_name``), with the full backbone configuration in
  ``arch_kwargs``; preprocessor, normalisation and resampling names stay stock, so stock ``nnUNetv2_preprocess``,
  ``nnUNetv2_train`` and ``nnUNetv2_predict`` accept the plans.

Axis order: the plans follow nnU-Net, (Z, Y, X) after ``transpose_forward``; this planner puts the axis with the
coarsest original spacing (the slice axis of thick-slice MRI) first, so ``patch_size[0]`` is the z crop.
"""
from __future__ import annotations

import json
import os
from copy import deepcopy

import numpy as np
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.utilities.json_export import recursive_fix_for_json_export

from nnunet_swin import __version__
from nnunet_swin.errors import UserError
from nnunet_swin.io import write_json
from nnunet_swin.geometry.tokens import size_divisor, stage_windows
from nnunet_swin.networks.presets import NETWORK_CLASS_NAME, get_preset
from nnunet_swin.geometry.padding import choose_inplane_crop, choose_z_crop, padding_statistics, resampled_shape

SPACING_LIMITS_MM = (0.05, 20.0)

# Resampling kwargs of nnU-Net's stock ``resample_data_or_seg_to_shape`` (the function name stays stock, so stock
# nnUNetv2_preprocess / nnUNetv2_predict follow them). All but "nnunet" resample in 3D at once (force_separate_z
# False), so thick slices are interpolated along z, never copied.
# - paper (default): images linear ("bilinear" in the paper), labels nearest neighbour (the paper's words), exported
#   probabilities linear;
# - linear: as paper, but labels linear too (nnU-Net's one-hot linear resize, smoother label surfaces along z);
# - nnunet: nnU-Net's defaults (separate z for anisotropic data: cubic in-plane, nearest neighbour along z, which
#   repeats each thick slice).
_LINEAR = {"is_seg": False, "order": 1, "order_z": 1, "force_separate_z": False}
RESAMPLING = {
    "paper": {"data": _LINEAR, "seg": {"is_seg": True, "order": 0, "order_z": 0, "force_separate_z": False},
              "probabilities": _LINEAR},
    "linear": {"data": _LINEAR, "seg": {"is_seg": True, "order": 1, "order_z": 1, "force_separate_z": False},
               "probabilities": _LINEAR},
    "nnunet": None,
}
# Stock normalisation scheme names. rescale01 = nnU-Net's RescaleTo01Normalization: per image, (I - min) / (max - min)
# on the cropped image; the paper clips at the image's 99th percentile first, which no stock scheme expresses, so a
# few very bright voxels compress the tissue range more than in the paper.
NORMALIZATION = {
    "zscore": {"scheme": None, "input_range": "z-scored"},
    "rescale01": {"scheme": "RescaleTo01Normalization", "input_range": "[0, 1]"},
}


def validate_target_spacing(spacing) -> np.ndarray:
    """Three finite spacings in mm within ``SPACING_LIMITS_MM``, or a UserError."""
    lo, hi = SPACING_LIMITS_MM
    try:
        arr = np.asarray([float(s) for s in spacing], dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.shape != (3,) or not np.all(np.isfinite(arr)) or arr.min() < lo or arr.max() > hi:
        raise UserError(f"target spacing must be three numbers between {lo} and {hi} mm, got {list(spacing)}; "
                        f"e.g. -overwrite_target_spacing 1 1 1")
    return arr


class SwinPlannerBase(ExperimentPlanner):
    """Shared planning for both backbones. Subclasses set the backbone preset and the plans name only."""

    backbone_family: str = ""            # the presets' encoder family this planner plans
    default_backbone: str = ""
    default_plans_name: str = "nnUNetSwinPlans"

    def __init__(self, dataset_name_or_id, gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: str | None = None,
                 overwrite_target_spacing=None, suppress_transpose: bool = False, *,
                 backbone: str | None = None, inplane_patch=(128, 128), pf_threshold: float = 0.05,
                 cubic_size: int | None = None, batch_size: int = 2, pretraining_spacing=(1.0, 1.0, 1.0),
                 resampling: str = "paper", normalization: str = "zscore", tumor_labels=None,
                 like_pretrained: dict | None = None):
        if overwrite_target_spacing is not None:
            overwrite_target_spacing = [float(s) for s in validate_target_spacing(overwrite_target_spacing)]
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name,
                         plans_name or self.default_plans_name, overwrite_target_spacing, suppress_transpose)
        backbone = backbone or self.default_backbone
        self.arch_kwargs = get_preset(backbone)
        if self.arch_kwargs["family"] != self.backbone_family:
            raise UserError(f"{type(self).__name__} plans {self.backbone_family} backbones, got {backbone!r} (a "
                            f"{self.arch_kwargs['family']} configuration); use the other planner or a "
                            f"{self.backbone_family} configuration")
        self.divisor = size_divisor(self.arch_kwargs)
        if isinstance(inplane_patch, int):
            inplane_patch = (inplane_patch, inplane_patch)
        self.inplane_patch = tuple(int(i) for i in inplane_patch)
        if len(self.inplane_patch) != 2 or min(self.inplane_patch) < 2 * self.divisor:
            raise UserError(f"in-plane patch must be two sides of at least {2 * self.divisor} (two size divisors, so "
                            f"the bottleneck keeps more than one token), got {list(inplane_patch)}")
        self.pf_threshold = float(pf_threshold)
        self.cubic_size = int(cubic_size or self.arch_kwargs["pretrained_input_size"][0])
        if self.cubic_size % self.divisor:
            raise UserError(f"cubic size {self.cubic_size} is not a multiple of {self.divisor}")
        if batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.pretraining_spacing = tuple(float(s) for s in pretraining_spacing)
        if resampling not in RESAMPLING:
            raise UserError(f"unknown resampling {resampling!r}; use {' or '.join(RESAMPLING)}")
        if normalization not in NORMALIZATION:
            raise UserError(f"unknown normalization {normalization!r}; use {' or '.join(NORMALIZATION)}")
        self.resampling, self.normalization = resampling, normalization
        self.tumor_labels = self._check_tumor_labels(tumor_labels)
        self.like_pretrained = dict(like_pretrained) if like_pretrained else None

    def like_pretrained_block(self, target_spacing) -> dict | None:
        """What ``-like_pretrained`` took (``PlanSettings.record()``) and where the dataset disagrees with the
        checkpoint (printed as warnings, recorded under ``warnings``); None without ``-like_pretrained``."""
        if self.like_pretrained is None:
            return None
        from nnunet_swin.planners.like_pretrained import dataset_disagreements
        from nnunet_swin.raw_dataset.folders import dataset_modality

        median = np.median(np.vstack(self.dataset_fingerprint["spacings"]), 0)
        channels = (self.dataset_json.get("channel_names") or self.dataset_json.get("modality") or {}).values()
        warnings = dataset_disagreements(self.like_pretrained, dataset_modality(self.dataset_json), channels,
                                         median, target_spacing)
        for w in warnings:
            print(f"WARNING: -like_pretrained {self.like_pretrained['checkpoint']}: {w}")
        return {**self.like_pretrained, "warnings": warnings}

    def _check_tumor_labels(self, tumor_labels) -> list[int] | None:
        """The tumour labels as a sorted list (None = every foreground label; a note when there are several)."""
        foreground = sorted({int(v) for name, v in self.dataset_json["labels"].items()
                             if name not in ("background", "ignore") and isinstance(v, int) and v > 0})
        if tumor_labels is None:
            if len(foreground) > 1:
                print(f"note: {self.dataset_name} has {len(foreground)} foreground labels {foreground}; all count as "
                      f"tumour (tumour-aware augmentation, subtypes, detection). Pass -tumor_labels to choose.")
            return None
        labels = sorted({int(t) for t in tumor_labels})
        unknown = [t for t in labels if t not in foreground]
        if unknown or not labels:
            raise UserError(f"-tumor_labels {labels}: {unknown or 'none'} not foreground label(s) of "
                            f"{self.dataset_name} ({foreground}); pick from those")
        return labels

    # -- spacing and axes ------------------------------------------------------------------------------------
    def determine_fullres_target_spacing(self) -> np.ndarray:
        """The backbone's pretraining spacing (isotropic 1 mm), in the fingerprint's axis order, or the override."""
        if self.overwrite_target_spacing is None:
            return np.array(self.pretraining_spacing, dtype=np.float64)
        return validate_target_spacing(self.overwrite_target_spacing)

    def determine_transpose(self):
        """Put the coarsest original axis (the slice axis) first, whatever the target spacing."""
        if self.suppress_transpose:
            return [0, 1, 2], [0, 1, 2]
        median_spacing = np.median(np.vstack(self.dataset_fingerprint["spacings"]), 0)
        first = int(np.argmax(median_spacing))
        forward = [first] + [i for i in range(3) if i != first]
        backward = [forward.index(i) for i in range(3)]
        return forward, backward

    # -- resampling and normalisation (stock function / scheme names, our kwargs) -------------------------------
    def determine_resampling(self, *args, **kwargs):
        data_fn, data_kwargs, seg_fn, seg_kwargs = super().determine_resampling(*args, **kwargs)
        paper = RESAMPLING[self.resampling]
        if paper is not None:
            data_kwargs, seg_kwargs = dict(paper["data"]), dict(paper["seg"])
        return data_fn, data_kwargs, seg_fn, seg_kwargs

    def determine_segmentation_softmax_export_fn(self, *args, **kwargs):
        fn, fn_kwargs = super().determine_segmentation_softmax_export_fn(*args, **kwargs)
        paper = RESAMPLING[self.resampling]
        return fn, (dict(paper["probabilities"]) if paper is not None else fn_kwargs)

    def determine_normalization_scheme_and_whether_mask_is_used_for_norm(self):
        schemes, use_mask = super().determine_normalization_scheme_and_whether_mask_is_used_for_norm()
        scheme = NORMALIZATION[self.normalization]["scheme"]
        if scheme is not None:
            schemes, use_mask = [scheme] * len(schemes), [False] * len(schemes)
        return schemes, use_mask

    # -- geometry --------------------------------------------------------------------------------------------
    def _check_3d(self) -> None:
        shapes = np.asarray(self.dataset_fingerprint["shapes_after_crop"])
        if shapes.ndim != 2 or shapes.shape[1] != 3 or np.all(shapes.min(1) == 1):
            raise UserError(f"{self.dataset_name} holds 2D images; {type(self).__name__} plans 3D Swin backbones "
                            f"only, use stock nnU-Net planners for 2D data")

    def resampled_shapes(self, target_spacing: np.ndarray, transpose_forward) -> np.ndarray:
        """Per-case shape after cropping and resampling to the target spacing, in plans axis order (N, 3)."""
        shapes = [resampled_shape(shape, spacing, target_spacing) for spacing, shape in
                  zip(self.dataset_fingerprint["spacings"], self.dataset_fingerprint["shapes_after_crop"])]
        return np.asarray(shapes, dtype=np.int64)[:, transpose_forward]

    def plan_geometry(self, shapes: np.ndarray) -> dict:
        """The ACT and cubic patch sizes and the statistics that justify them, from per-case shapes (N, 3)."""
        median = np.median(shapes, 0)
        small = [a for a in range(3) if median[a] < self.divisor]
        if small:
            axes = ", ".join(f"axis {a} (median {median[a]:.0f} voxels)" for a in small)
            raise UserError(f"{self.dataset_name}: volumes are smaller than the backbone's size divisor "
                            f"{self.divisor} along {axes} at the target spacing; use a finer "
                            f"-overwrite_target_spacing or a dataset with larger volumes")
        inplane = [choose_inplane_crop(shapes[:, a], req, self.divisor) for a, req in zip((1, 2), self.inplane_patch)]
        z_crop, candidates = choose_z_crop(shapes[:, 0], self.divisor, self.pf_threshold, max_crop=max(inplane))
        return {
            "anisotropic": [z_crop, *inplane],
            "cubic": [self.cubic_size] * 3,
            "z_crop_candidates": candidates,
        }

    def swin_metadata(self, kind: str, patch_size, shapes: np.ndarray, candidates, like_pretrained=None) -> dict:
        """What is stored under ``configurations[c]["swin"]``: why this patch, and what Swin's windows will pad
        (and, with ``-like_pretrained``, which checkpoint the plan was made like)."""
        block = {
            "kind": kind,
            "backbone": self.arch_kwargs["backbone"],
            "size_divisor": self.divisor,
            "pf_threshold": self.pf_threshold,
            "padding_fraction": {
                "z": padding_statistics(shapes[:, 0], patch_size[0]),
                "y": padding_statistics(shapes[:, 1], patch_size[1]),
                "x": padding_statistics(shapes[:, 2], patch_size[2]),
            },
            "z_crop_candidates": candidates if kind == "anisotropic" else [],
            "window_padding": [
                {"stage": s.stage, "feature_size": list(s.feature_size), "window": list(s.window),
                 "padded_size": list(s.padded_size), "window_padding_fraction": round(s.window_padding_fraction, 4)}
                for s in stage_windows(patch_size, self.arch_kwargs)
            ],
            "resampling": self.resampling,
            "normalization": {"mode": self.normalization, **NORMALIZATION[self.normalization]},
            "tumor_labels": self.tumor_labels,
            "nnunet_swin_version": __version__,
        }
        if like_pretrained is not None:
            block["like_pretrained"] = like_pretrained
        return block

    def configuration(self, patch_size, spacing, median_shape, data_identifier: str, swin: dict) -> dict:
        resampling_data, resampling_data_kwargs, resampling_seg, resampling_seg_kwargs = self.determine_resampling()
        resampling_softmax, resampling_softmax_kwargs = self.determine_segmentation_softmax_export_fn()
        normalization_schemes, mask_is_used_for_norm = \
            self.determine_normalization_scheme_and_whether_mask_is_used_for_norm()
        arch_kwargs = deepcopy(self.arch_kwargs)
        arch_kwargs["strides"] = [[2, 2, 2]] * (len(arch_kwargs["depths"]) + 1)
        return {
            "data_identifier": data_identifier,
            "preprocessor_name": self.preprocessor_name,
            "batch_size": self.batch_size,
            "patch_size": [int(p) for p in patch_size],
            "median_image_size_in_voxels": [float(m) for m in median_shape],
            "spacing": [float(s) for s in spacing],
            "normalization_schemes": normalization_schemes,
            "use_mask_for_norm": mask_is_used_for_norm,
            "resampling_fn_data": resampling_data.__name__,
            "resampling_fn_seg": resampling_seg.__name__,
            "resampling_fn_data_kwargs": resampling_data_kwargs,
            "resampling_fn_seg_kwargs": resampling_seg_kwargs,
            "resampling_fn_probabilities": resampling_softmax.__name__,
            "resampling_fn_probabilities_kwargs": resampling_softmax_kwargs,
            "architecture": {"network_class_name": NETWORK_CLASS_NAME, "arch_kwargs": arch_kwargs,
                             "_kw_requires_import": []},
            "batch_dice": False,
            "swin": swin,
        }

    def plan_experiment(self) -> dict:
        self._check_3d()
        transpose_forward, transpose_backward = self.determine_transpose()
        target = self.determine_fullres_target_spacing()
        spacing = target[transpose_forward]
        shapes = self.resampled_shapes(target, transpose_forward)
        geometry = self.plan_geometry(shapes)
        median_shape = np.median(shapes, 0)
        data_identifier = self.generate_data_identifier("3d_fullres")  # both share the same preprocessed data
        like = self.like_pretrained_block(target)
        configurations = {}
        for name, kind in (("3d_fullres", "anisotropic"), ("3d_cubic", "cubic")):
            patch = geometry[kind]
            swin = self.swin_metadata(kind, patch, shapes, geometry["z_crop_candidates"], like)
            configurations[name] = self.configuration(patch, spacing, median_shape, data_identifier, swin)
        fp = self.dataset_fingerprint
        plans = {
            "dataset_name": self.dataset_name,
            "plans_name": self.plans_identifier,
            "original_median_spacing_after_transp": [float(i) for i in np.median(fp["spacings"], 0)[transpose_forward]],
            "original_median_shape_after_transp": [int(round(i)) for i in
                                                   np.median(fp["shapes_after_crop"], 0)[transpose_forward]],
            "image_reader_writer": self.determine_reader_writer().__name__,
            "transpose_forward": [int(i) for i in transpose_forward],
            "transpose_backward": [int(i) for i in transpose_backward],
            "configurations": configurations,
            "experiment_planner_used": type(self).__name__,
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": fp["foreground_intensity_properties_per_channel"],
        }
        print(format_plan_summary(plans))
        import shutil
        shutil.copy(os.path.join(self.raw_dataset_folder, "dataset.json"),
                    os.path.join(str(nnUNet_preprocessed), self.dataset_name, "dataset.json"))
        self.plans = plans
        self.save_plans(plans)
        return plans

    def save_plans(self, plans: dict) -> None:
        """Like nnU-Net's (keeps other configurations of an existing plans file), but written atomically."""
        recursive_fix_for_json_export(plans)
        folder = os.path.join(str(nnUNet_preprocessed), self.dataset_name)
        os.makedirs(folder, exist_ok=True)
        plans_file = os.path.join(folder, self.plans_identifier + ".json")
        if os.path.isfile(plans_file):
            with open(plans_file) as f:
                old = json.load(f)
            kept = {k: v for k, v in old.get("configurations", {}).items() if k not in plans["configurations"]}
            plans["configurations"].update(kept)
        write_json(plans_file, plans, indent=4)
        print(f"Plans were saved to {plans_file}")


def format_plan_summary(plans: dict) -> str:
    """A short human-readable table of the padding statistics and window padding per configuration."""
    lines = [f"nnunet-swin plans {plans['plans_name']} for {plans['dataset_name']} "
             f"(axes Z, Y, X; spacing {plans['configurations']['3d_fullres']['spacing']} mm)"]
    for name, cfg in plans["configurations"].items():
        swin = cfg.get("swin")
        if not swin:
            continue
        pf = swin["padding_fraction"]["z"]
        lines.append(f"  {name:<10} {swin['kind']:<11} patch {cfg['patch_size']}  batch {cfg['batch_size']}  "
                     f"z padding: mean pf {pf['mean_pf']:.3f}, median {pf['median_pf']:.3f}, "
                     f"{100 * pf['share_padded']:.0f}% of {pf['num_cases']} cases padded")
        for s in swin["window_padding"]:
            lines.append(f"      stage {s['stage']}: tokens {s['feature_size']} window {s['window']} -> padded "
                         f"{s['padded_size']} ({100 * s['window_padding_fraction']:.1f}% window padding)")
    fullres = plans["configurations"]["3d_fullres"]["swin"]
    if fullres["z_crop_candidates"]:
        cands = ", ".join(f"{c['crop']}:{c['mean_pf']:.3f}" for c in fullres["z_crop_candidates"])
        lines.append(f"  z crop candidates (crop:mean pf, threshold {fullres['pf_threshold']}): {cands}")
    if fullres.get("like_pretrained"):
        like = fullres["like_pretrained"]
        lines.append(f"  planned like {like['checkpoint']} ({like['source']}; "
                     f"{len(like['warnings'])} warning(s))")
    if "resampling" in fullres:
        tumour = fullres["tumor_labels"] or "all foreground labels"
        lines.append(f"  resampling {fullres['resampling']}, normalisation {fullres['normalization']['mode']} "
                     f"(input {fullres['normalization']['input_range']}), tumour labels {tumour}")
    return "\n".join(lines)


class SMITPlanner(SwinPlannerBase):
    """SMIT (128^3, window 4, patch 2). Plans identifier ``nnUNetSMITPlans``."""

    backbone_family = default_backbone = "smit"
    default_plans_name = "nnUNetSMITPlans"


class SwinUNETRPlanner(SwinPlannerBase):
    """Swin UNETR (96^3, window 7, patch 2, NVIDIA weights). Plans identifier ``nnUNetSwinUNETRPlans``."""

    backbone_family = default_backbone = "swin_unetr"
    default_plans_name = "nnUNetSwinUNETRPlans"


PLANNERS = {"SMITPlanner": SMITPlanner, "SwinUNETRPlanner": SwinUNETRPlanner}
