"""What a checkpoint of ``nnunet-swin pretrain`` says about itself, and how it compares with fine-tuning plans.

Pure functions on plain dicts (no torch needed), for the adapters' callers:

- ``read_pretraining_metadata(obj)``: the metadata dict of a loaded checkpoint written by ``nnunet-swin pretrain``
  (``obj["metadata"]["format"] == FORMAT``), else None;
- ``describe(metadata)``: one line naming the file ("nnunet-swin pretraining, method ..., backbone ..."), which
  encoder the adapters load and why, and what the collapse monitor saw, for ``nnunet-swin weights inspect`` and the
  trainer's load report;
- ``encoder_summary(metadata)``: what the encoder is in one phrase (method, steps, corpus, exported encoder,
  collapse), for load lines and reports;
- ``compare_with_plans(metadata, spacing, normalization_schemes)``: warning strings when the fine-tuning plans'
  spacing differs from the pretraining spacing, or the input ranges differ in kind (e.g. [0, 1] pretraining input
  against z-scored fine-tuning input); ``report_lines`` puts both side by side for the trainer's load report;
- ``adaptation_plan(metadata)``: the block our pretraining writes beside its metadata (checkpoint key
  ``ADAPTATION_PLAN_KEY``), in the shape of the ``nnssl_adaptation_plan`` nnU-Net's pretrained flow reads
  (``nnUNetv2_preprocess_like_nnssl``, master after 2.8.1): pretraining spacing, normalisation and patch size, and the
  network's transfer surface ``key_to_encoder`` / ``key_to_stem`` / ``keys_to_in_proj``.
"""
from __future__ import annotations

FORMAT = "nnunet-swin pretraining"
FORMAT_VERSION = 1
ADAPTATION_PLAN_KEY = "nnssl_adaptation_plan"   # the checkpoint key nnU-Net's pretrained flow reads

# nnU-Net normalisation scheme name -> the kind of range the network sees
RANGE_KINDS = {
    "ZScoreNormalization": "z-scored",
    "CTNormalization": "z-scored",          # percentile clip, then dataset mean/std
    "RescaleTo01Normalization": "[0, 1]",
    "RGBTo01Normalization": "[0, 1]",
    "NoNormalization": "raw",
}


def read_pretraining_metadata(obj) -> dict | None:
    """``obj["metadata"]`` when ``obj`` is a loaded ``nnunet-swin pretrain`` checkpoint, else None."""
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) and obj["metadata"].get("format") == FORMAT:
        return obj["metadata"]
    return None


def _range_kind(metadata: dict) -> str:
    lo_hi = (metadata.get("intensity") or {}).get("output_range")
    return "[0, 1]" if lo_hi == [0.0, 1.0] or lo_hi == [0, 1] else "unknown"


def describe_intensity(intensity: dict) -> str:
    if intensity.get("modality") == "CT":
        lo, hi = intensity.get("hu_window", [None, None])
        return f"CT, HU window [{lo:g}, {hi:g}] -> [0, 1]"
    if intensity.get("modality") == "MR":
        return f"MR, per image [min, p{intensity.get('upper_percentile', 99):g}] -> [0, 1]"
    return "unknown intensity scheme"


def describe(metadata: dict) -> str:
    """One line: format, method, backbone, epochs, data count, spacing, intensity scheme, which encoder is loaded."""
    sp = metadata.get("spacing_zyx_mm")
    spacing = "x".join(f"{s:g}" for s in sp) + " mm" if sp else "unknown spacing"
    state = "finished" if metadata.get("finished") else "unfinished"
    text = (f"{FORMAT} ({state}): method {metadata.get('method')}, backbone {metadata.get('backbone')}, "
            f"{metadata.get('epochs_completed')}/{metadata.get('epochs')} epochs on {metadata.get('num_volumes')} "
            f"volumes, {spacing}, {describe_intensity(metadata.get('intensity') or {})}; "
            f"the adapters load the {metadata.get('encoder_loaded', 'teacher')} encoder")
    if metadata.get("encoder_rule"):
        text += f" ({metadata['encoder_rule']})"
    return text + _monitor_note(metadata)


def _monitor_note(metadata: dict) -> str:
    monitor = metadata.get("monitor")
    if not isinstance(monitor, dict):
        return ""
    first = monitor.get("first_collapse") or {}
    if monitor.get("collapsed"):
        return (f"; the collapse monitor saw the distillation collapse in epoch {first.get('epoch')} "
                f"({', '.join(h.upper() for h in first.get('heads', []))}): its distillation terms taught nothing "
                "after that, only the reconstruction term trained the encoder")
    return "; the collapse monitor saw no collapse"


def encoder_summary(metadata: dict) -> str:
    """What the encoder is, in one phrase for load lines and reports, from its metadata: e.g. "smit_tiny encoder
    pretrained with nnunet-swin pretrain (SMIT, 400 steps on 13 CT volumes; student encoder; distillation
    collapsed in epoch 3)"."""
    steps = metadata.get("steps")
    modality = (metadata.get("intensity") or {}).get("modality", "")
    monitor = metadata.get("monitor") if isinstance(metadata.get("monitor"), dict) else None
    parts = [f"{str(metadata.get('method', '?')).upper()}, {steps if steps is not None else '?'} steps on "
             f"{metadata.get('num_volumes')} {modality} volumes".replace("  ", " "),
             f"{metadata.get('encoder_loaded', 'teacher')} encoder"]
    if monitor is not None:
        first = monitor.get("first_collapse") or {}
        parts.append(f"distillation collapsed in epoch {first.get('epoch')}" if monitor.get("collapsed")
                     else "no distillation collapse seen")
    state = "" if metadata.get("finished") else "unfinished "
    return (f"{metadata.get('backbone')} encoder from an {state}`nnunet-swin pretrain` run ("
            + "; ".join(parts) + ")")


def compare_with_plans(metadata: dict, spacing, normalization_schemes, tolerance: float = 0.05) -> list[str]:
    """Warnings (empty when consistent). ``spacing``: the plans configuration's ``spacing`` (mm, any axis order;
    compared as a sorted set when both are near isotropic, else axis by axis in (z, y, x));
    ``normalization_schemes``: the plans' per-channel scheme names."""
    warnings = []
    pre = metadata.get("spacing_zyx_mm")
    if pre is not None and spacing is not None:
        pre, spacing = [float(s) for s in pre], [float(s) for s in spacing]
        if len(pre) != len(spacing) or any(abs(a - b) > tolerance * max(a, b) for a, b in zip(pre, spacing)):
            warnings.append(f"spacing differs: the encoder was pretrained at {pre} mm, the plans train at {spacing} "
                            "mm; structures appear at another scale (re-plan with -overwrite_target_spacing or "
                            "pretrain with --spacing)")
    kind = _range_kind(metadata)
    for i, scheme in enumerate(normalization_schemes or []):
        plan_kind = RANGE_KINDS.get(str(scheme), "unknown")
        if plan_kind != kind:
            warnings.append(f"input range differs in kind on channel {i}: pretraining saw {kind} "
                            f"({describe_intensity(metadata.get('intensity') or {})}), the plans use {scheme} "
                            f"({plan_kind}); scale the fine-tuning input to [0, 1] as the encoder saw")
    return warnings


def report_lines(metadata: dict, spacing, normalization_schemes) -> list[str]:
    """Side-by-side lines for the trainer's load report, then the warnings."""
    lines = [describe(metadata),
             f"  spacing (mm):  pretraining {metadata.get('spacing_zyx_mm')}  |  plans {list(spacing or [])}",
             f"  intensity:     pretraining {describe_intensity(metadata.get('intensity') or {})}  |  plans "
             f"{list(normalization_schemes or [])}"]
    lines += [f"  WARNING: {w}" for w in compare_with_plans(metadata, spacing, normalization_schemes)]
    return lines


def intensity_scheme_name(intensity: dict) -> str:
    """The name of the pretraining intensity scheme (``ct_hu_window`` / ``mr_percentile_clip``); no stock nnU-Net
    scheme expresses either (the nearest is ``RescaleTo01Normalization``, per image min-max)."""
    return str(intensity.get("scheme") or ("ct_hu_window" if intensity.get("modality") == "CT" else "unknown"))


def adaptation_plan(metadata: dict, network_class=None) -> dict:
    """The adaptation-plan block of a pretraining checkpoint, from its metadata (pure; no I/O).

    Shape of nnssl's ``AdaptationPlan`` as serialised into ``checkpoint["nnssl_adaptation_plan"]``:
    ``architecture_plans`` (class name, ``arch_kwargs``), ``pretrain_plan`` (one configuration with the pretraining
    ``spacing`` (z, y, x) mm, ``patch_size`` (the crop, voxels) and ``normalization_schemes``, one per input channel),
    ``pretrain_num_input_channels``, ``recommended_downstream_patchsize``, and the transfer surface the network
    declares (``key_to_encoder``, ``key_to_stem``, ``keys_to_in_proj``; ``key_to_lpe`` None: Swin has no learned
    absolute position embedding). ``network_class``: where the keys are read (default ``SwinSegmentationNetwork``,
    imported only when called)."""
    from nnunet_swin.networks.presets import NETWORK_CLASS_NAME

    if network_class is None:
        from nnunet_swin.networks.segmentation import SwinSegmentationNetwork as network_class
    arch_kwargs = dict(metadata.get("arch_kwargs") or {})
    crop = metadata.get("crop") or (arch_kwargs.get("pretrained_input_size") or [None])[0]
    patch = [int(crop)] * 3 if crop is not None else None
    channels = int(metadata.get("in_channels", 1))
    intensity = dict(metadata.get("intensity") or {})
    return {
        "architecture_plans": {"arch_class_name": NETWORK_CLASS_NAME, "arch_kwargs": arch_kwargs,
                               "arch_kwargs_requiring_import": []},
        "pretrain_plan": {
            "dataset_name": f"nnunet-swin pretraining on {metadata.get('num_volumes')} volumes",
            "plans_name": f"nnunet_swin_{metadata.get('method')}_{metadata.get('backbone')}",
            "configurations": {"pretraining": {
                "spacing": [float(s) for s in metadata.get("spacing_zyx_mm") or []],
                "patch_size": patch,
                "normalization_schemes": [intensity_scheme_name(intensity)] * channels,
                "intensity": intensity,
            }},
        },
        "pretrain_num_input_channels": channels,
        "recommended_downstream_patchsize": patch,
        "key_to_encoder": network_class.key_to_encoder,
        "key_to_stem": network_class.key_to_stem,
        "keys_to_in_proj": list(network_class.keys_to_in_proj),
        "key_to_lpe": None,
    }
