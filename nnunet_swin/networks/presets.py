"""Backbone configurations: the `arch_kwargs` our planners write into the plans.

Everything the segmentation network needs to rebuild itself is here, as plain JSON-able values; nothing is read
from environment variables at build time. Window and patch sizes are cubic in every preset, so their axis order
does not matter; the network documents how it maps nnU-Net's (Z, Y, X) arrays onto the checkpoints' (X, Y, Z).

Switch meanings (see `shared/reference/backbones_and_checkpoints.md`):
- ``merge_order``: neighbour order of the 2x2x2 patch merging. ``legacy`` = MONAI <= 1.4 (what the NVIDIA
  Swin UNETR weights were trained with), ``monai16`` = MONAI >= 1.5, ``v2`` = MONAI ``mergingv2``, ``smit`` = SMIT.
- ``use_v2``: Swin UNETR-V2's residual convolution block before each stage (MONAI ``use_v2=True``; VoCo).
- ``window_reverse``: ``inverse`` (correct) or ``smit`` (SMIT's non-inverse permutation its weights depend on).
- ``shrink_window``: MONAI shrinks the window (and drops the shift) along axes where the feature map is not
  larger than the window; SMIT pads instead.
- ``rel_index_slice``: with a shrunk window, MONAI slices the top-left block of the full-window relative-position
  index instead of recomputing it; reproduce that.
- ``family``: which public checkpoints the encoder takes, ``swin_unetr`` (NVIDIA, MONAI) or ``smit``; the one
  place the family is decided (the checkpoint adapters and the planners read it from here).
- ``skip_taps``: ``monai`` = skips are the patch embedding and each stage's merged output, normalised by a
  non-affine LayerNorm; ``smit`` = skips are each stage's pre-merge tokens through a learned ``norm{i}``.
"""
from __future__ import annotations

import copy

FAMILY_NAMES = {"swin_unetr": "Swin UNETR", "smit": "SMIT"}

NETWORK_CLASS_NAME = "nnunet_swin.networks.segmentation.SwinSegmentationNetwork"

# What every backbone shares: the checkpoints' embedding, MLP and qkv layout, and our decoder and switches.
_COMMON = dict(embed_dim=48, patch_size=[2, 2, 2], mlp_ratio=4.0, qkv_bias=True, drop_path_rate=0.0, use_v2=False,
               decoder_features=48, decoder_norm="instance", exclude_padding_keys=False, gradient_checkpointing=False)


def _backbone(name: str, **config) -> dict:
    return copy.deepcopy({"backbone": name, **_COMMON, **config})


_SWIN_UNETR = _backbone("swin_unetr", family="swin_unetr", depths=[2, 2, 2, 2], num_heads=[3, 6, 12, 24], window_size=[7, 7, 7],
                        patch_norm=False, pretrained_input_size=[96, 96, 96],
                        merge_order="legacy", window_reverse="inverse", shrink_window=True, rel_index_slice=True,
                        skip_taps="monai")
_SMIT = _backbone("smit", family="smit", depths=[2, 2, 12, 2], num_heads=[4, 4, 8, 16], window_size=[4, 4, 4],
                  patch_norm=True, pretrained_input_size=[128, 128, 128],
                  merge_order="smit", window_reverse="smit", shrink_window=False, rel_index_slice=False,
                  skip_taps="smit")

# The spine variant's switches (networks/multiscale_fusion.py, WindowAttention's key scores).
_SPINE = dict(multiscale_fusion=True, fusion_kernels=[3, 5, 7], fusion_weights="bifpn", adaptive_attention=True)

# Reduced configurations for CPU tests and the demo (no public weights exist for them).
_TINY = dict(embed_dim=12, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], decoder_features=12)

PRESETS: dict[str, dict] = {
    # SMIT 128^3 (`get_SMIT_128_bias_True`; the paper's SMIT): depths (2,2,12,2), heads (4,4,8,16), qkv bias.
    "smit": _SMIT,
    # SMIT original MICCAI release (pre_train_weight.pt): 96^3, depths (2,2,4,2), heads (4,4,4,4), no qkv bias.
    "smit96": {**_SMIT, "backbone": "smit96", "depths": [2, 2, 4, 2], "num_heads": [4, 4, 4, 4],
               "qkv_bias": False, "pretrained_input_size": [96, 96, 96]},
    # NVIDIA model_swinvit.pt (MONAI Swin UNETR, feature_size 48, legacy merge order).
    "swin_unetr": _SWIN_UNETR,
    # Swin UNETR-V2 (MONAI ``use_v2=True``: a residual conv block before each stage), legacy merge order (MONAI 1.3):
    # VoCo B / VoComni B (feature size 48), VoCo L (96), VoCo H (192). Depths (2,2,2,2), heads (3,6,12,24), window 7.
    "swin_unetr_v2": {**_SWIN_UNETR, "backbone": "swin_unetr_v2", "use_v2": True},
    "swin_unetr_v2_96": {**_SWIN_UNETR, "backbone": "swin_unetr_v2_96", "use_v2": True, "embed_dim": 96,
                         "decoder_features": 96},
    "swin_unetr_v2_192": {**_SWIN_UNETR, "backbone": "swin_unetr_v2_192", "use_v2": True, "embed_dim": 192,
                          "decoder_features": 192},
    # BrainSegFounder's deeper encoders (--num_swin_block 6 / 18): depths (2,2,6,2) and (2,2,18,2), feature size 48.
    "swin_unetr_d6": {**_SWIN_UNETR, "backbone": "swin_unetr_d6", "depths": [2, 2, 6, 2]},
    "swin_unetr_d18": {**_SWIN_UNETR, "backbone": "swin_unetr_d18", "depths": [2, 2, 18, 2]},
    # A MONAI SwinUNETR the user trained with MONAI >= 1.5 (fixed PatchMerging, PR #8285); no key tells the two
    # orders apart, so choosing this preset is the user's declaration.
    "swin_unetr_monai15": {**_SWIN_UNETR, "backbone": "swin_unetr_monai15", "merge_order": "monai16"},
    "smit_tiny": {**_SMIT, **_TINY, "backbone": "smit_tiny"},
    "swin_unetr_tiny": {**_SWIN_UNETR, **_TINY, "backbone": "swin_unetr_tiny"},
    "swin_unetr_v2_tiny": {**_SWIN_UNETR, **_TINY, "backbone": "swin_unetr_v2_tiny", "use_v2": True},
    # The spine variant (arXiv 2503.12853): Swin UNETR + multi-scale convolution fusion + adaptive attention; both
    # modules are identity at initialisation, so the NVIDIA weights load and compute the plain network's output.
    "swin_unetr_msf": {**_SWIN_UNETR, **_SPINE, "backbone": "swin_unetr_msf"},
    "swin_unetr_msf_tiny": {**_SWIN_UNETR, **_TINY, **_SPINE, "backbone": "swin_unetr_msf_tiny"},
}


def get_preset(name: str) -> dict:
    """A deep copy of the named backbone configuration (``arch_kwargs`` without ``strides``)."""
    if name not in PRESETS:
        from nnunet_swin.errors import UserError
        raise UserError(f"unknown backbone configuration {name!r}; choose one of: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def preset_family(name: str) -> str:
    """The encoder family (``swin_unetr`` or ``smit``) of the named backbone configuration."""
    return get_preset(name)["family"]
