"""Which parameters get weight decay, asked of the model (timm's ``no_weight_decay()`` convention), for AdamW.

One rule for fine-tuning (``trainers``) and pretraining (``pretraining``): a module that declares
``no_weight_decay()`` (the Swin encoder, the segmentation network) names its exempt parameters (norms, biases,
relative-position bias tables); every other 1-D parameter (biases, norm scales of heads) and any learned
``mask_token`` are exempt too; the rest (weight matrices, convolution kernels) is decayed. nnU-Net's default would
decay them all.
"""
from __future__ import annotations

from torch import nn


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full parameter names of ``model`` exempt from weight decay: what every submodule that declares
    ``no_weight_decay()`` names (prefixed with its path), plus every 1-D parameter and every ``mask_token``."""
    exempt = set()
    for prefix, module in model.named_modules():
        declare = getattr(module, "no_weight_decay", None)
        if callable(declare):
            exempt |= {f"{prefix}.{name}" if prefix else name for name in declare()}
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name == "mask_token" or name.endswith(".mask_token"):
            exempt.add(name)
    return exempt


def adamw_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups, ``[{decayed, weight_decay}, {exempt, 0}]`` (trainable parameters only)."""
    exempt = no_weight_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name in exempt else decay).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
