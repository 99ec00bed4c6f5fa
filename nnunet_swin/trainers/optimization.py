"""Which parameters get weight decay: the Swin / timm convention (paper section 2.5.1 uses AdamW).

Decayed: weight matrices and convolution kernels. Not decayed: every 1-D parameter (biases and the scales and
shifts of LayerNorm / InstanceNorm), and the relative-position bias tables and mask tokens, which timm's Swin
exempts through ``no_weight_decay_keywords``. nnU-Net's default would decay them all.
"""
from __future__ import annotations

from torch import nn

NO_DECAY_KEYWORDS = ("relative_position_bias_table", "mask_token")


def is_decayed(name: str, parameter: nn.Parameter) -> bool:
    return parameter.ndim > 1 and not any(k in name for k in NO_DECAY_KEYWORDS)


def parameter_groups(network: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups, ``[{decayed, weight_decay}, {the rest, 0}]`` (trainable parameters only)."""
    decay, no_decay = [], []
    for name, p in network.named_parameters():
        if p.requires_grad:
            (decay if is_decayed(name, p) else no_decay).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
