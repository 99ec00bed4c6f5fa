"""A stand-in "pretrained" encoder checkpoint in a public file layout, for the demo and the tests.

No CT-pretrained weights can be downloaded here, and none exist for the reduced (``*_tiny``) backbones. To exercise
the real loading path (``$nnUNet_swin_pretrained`` -> key mapping -> report) the demo writes a checkpoint whose
*weights are random* (seeded) but whose *layout* is that of the public releases:

- SMIT family (``skip_taps == "smit"``): the original SMIT repository's bare encoder dict
  (``patch_embed.*``, ``layers.{i}.blocks.{j}.*`` including ``attn.relative_position_index``,
  ``layers.{i}.downsample.*``, ``norm{i}.*`` skip norms);
- Swin UNETR family: NVIDIA ``model_swinvit.pt``: ``{"state_dict": {"module.layers{i+1}.0.blocks.{j}...": ...}}``.

Training from it is, in effect, training from random initialisation; results must not be read as CT transfer.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from nnunet_swin.io import save_checkpoint


def standin_encoder_state(arch_kwargs: dict, seed: int = 0) -> dict:
    """The public-layout checkpoint object for a freshly (seeded) initialised encoder of ``arch_kwargs``."""
    from nnunet_swin.networks.attention import relative_position_index
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork

    torch.manual_seed(seed)
    network = SwinSegmentationNetwork(1, 2, deep_supervision=False, **arch_kwargs)
    state = network.encoder.state_dict()
    window = tuple(int(w) for w in arch_kwargs["window_size"])
    block_prefixes = sorted({m.group(1) for k in state if (m := re.match(r"(layers\.\d+\.blocks\.\d+)\.", k))})
    for prefix in block_prefixes:  # the public files carry the (derived) index buffer
        state[f"{prefix}.attn.relative_position_index"] = relative_position_index(window, window)
    if arch_kwargs.get("skip_taps") == "smit":
        return {re.sub(r"^skip_norms\.(\d+)\.", r"norm\1.", k): v.clone() for k, v in state.items()}
    out = {}
    for key, value in state.items():
        m = re.match(r"layers\.(\d+)\.(.*)$", key)
        public = f"layers{int(m.group(1)) + 1}.0.{m.group(2)}" if m else key
        out[f"module.{public}"] = value.clone()
    return {"state_dict": out}


def write_standin_checkpoint(arch_kwargs: dict, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write :func:`standin_encoder_state` to ``path`` (atomically) and return the path."""
    return save_checkpoint(path, standin_encoder_state(arch_kwargs, seed))
