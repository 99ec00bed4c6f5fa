"""The segmentation network nnU-Net builds from our plans: Swin encoder + Swin UNETR convolutional decoder.

Axis order. nnU-Net feeds ``(B, C, Z, Y, X)``; the public checkpoints (MONAI, SMIT) were trained on
``(B, C, X, Y, Z)``. The network permutes the input (and ``padding_mask``) to ``(B, C, X, Y, Z)`` on entry, runs
encoder and decoder in that frame with the weights unchanged, and permutes the logits back to
``(B, K, Z, Y, X)``. So loaded weights compute exactly what they computed in pretraining: for any ``x``,
``net(x) == monai_net(x.permute(0, 1, 4, 3, 2)).permute(0, 1, 4, 3, 2)`` (tested). Consequently the encoder's own axes
(``net.encoder``, probe events, block hooks) are (X, Y, Z).
"""
from __future__ import annotations

from math import prod

import torch
from torch import nn

from nnunet_swin.errors import UserError
from nnunet_swin.networks.attention import ProbeCallback
from nnunet_swin.networks.decoder import DECODER_LEVELS, UnetrDecoder
from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.geometry.tokens import size_divisor, stage_windows, valid_neighbours
from nnunet_swin.networks.presets import PRESETS
from nnunet_swin.networks.token_kinds import real_voxels_by_value

# arch_kwargs understood by the network; everything else is rejected.
ENCODER_KEYS = ("embed_dim", "depths", "num_heads", "window_size", "patch_size", "mlp_ratio", "qkv_bias", "patch_norm",
                "drop_path_rate", "merge_order", "window_reverse", "shrink_window", "rel_index_slice", "skip_taps",
                "exclude_padding_keys", "gradient_checkpointing", "adaptive_attention", "multiscale_fusion",
                "fusion_kernels", "fusion_weights", "family", "use_v2")
NETWORK_KEYS = ("backbone", "decoder_features", "decoder_norm", "pretrained_input_size", "strides")
# "strides" is written by nnU-Net's planning conventions and ignored: the Swin geometry fixes every stride to 2.


def _swap_xz(t: torch.Tensor) -> torch.Tensor:
    """``(B, C, Z, Y, X)`` -> ``(B, C, X, Y, Z)`` (nnU-Net's frame into the checkpoints'), and, being its own inverse,
    ``(B, C, X, Y, Z)`` -> ``(B, C, Z, Y, X)`` on the way back."""
    return t.permute(0, 1, 4, 3, 2)


class SwinSegmentationNetwork(nn.Module):
    """``(B, C, Z, Y, X)`` -> logits ``(B, num_classes, Z, Y, X)`` (no softmax); sides must be multiples of 32.

    Built by nnU-Net as ``SwinSegmentationNetwork(input_channels=..., num_classes=..., deep_supervision=False,
    **arch_kwargs)`` with ``arch_kwargs`` one of ``presets.PRESETS`` (plus nnU-Net's ``strides``, ignored).
    Deep supervision is not provided (the decoder has one output); ``deep_supervision=True`` raises ``UserError``.
    """

    # The transfer surface, named on the model (dynamic-network-architectures' convention, read by nnU-Net 2.8.1's
    # pretrained flow): the pretrained part, its stem, and the layers whose input side depends on the input channels.
    key_to_encoder = "encoder"
    key_to_stem = "encoder.patch_embed"
    keys_to_in_proj = ("encoder.patch_embed.proj", "decoder.encoder1.layer.conv1.conv", "decoder.encoder1.layer.conv3.conv")

    def __init__(self, input_channels: int, num_classes: int, deep_supervision: bool = False, **arch_kwargs) -> None:
        super().__init__()
        unknown = sorted(set(arch_kwargs) - set(ENCODER_KEYS) - set(NETWORK_KEYS))
        if unknown:
            raise UserError(f"SwinSegmentationNetwork got unknown arch_kwargs {unknown}; "
                            f"allowed: {', '.join(ENCODER_KEYS + NETWORK_KEYS)} (check the plans file)")
        if deep_supervision:
            raise UserError("SwinSegmentationNetwork has no deep supervision outputs; train it with an nnunet_swin "
                            "trainer (they disable deep supervision) or set enable_deep_supervision = False")
        depths = arch_kwargs.get("depths", (2, 2, 2, 2))
        if len(depths) != 4:
            raise UserError(f"the Swin UNETR decoder needs 4 encoder stages, got depths={list(depths)}")
        self.arch_kwargs = dict(arch_kwargs)
        self.backbone = arch_kwargs.get("backbone", "swin_unetr")
        self.input_channels, self.num_classes = input_channels, num_classes
        enc_kwargs = {k: arch_kwargs[k] for k in ENCODER_KEYS if k in arch_kwargs}
        if "family" not in enc_kwargs and self.backbone in PRESETS:  # plans written before presets named it
            enc_kwargs["family"] = PRESETS[self.backbone]["family"]
        self.encoder = SwinEncoder(input_channels, **enc_kwargs)
        self.decoder = UnetrDecoder(input_channels, num_classes, self.encoder.channels,
                                    arch_kwargs.get("decoder_features", self.encoder.embed_dim),
                                    arch_kwargs.get("decoder_norm", "instance"))
        self.divisor = size_divisor({"patch_size": list(self.encoder.patch_size), "depths": list(depths)})
        # None, or the value whose voxels are padding (``exclude_input_padding``); not an arch kwarg: the Masked
        # trainer sets it when it builds the network, for training and stock nnUNetv2_predict alike
        self.input_padding_value: float | None = None

    def exclude_input_padding(self, padding_value: float = 0.0) -> "SwinSegmentationNetwork":
        """Exclude padding tokens from attention, padding found from the input itself: a voxel is padding when it
        equals ``padding_value`` in every channel (``token_kinds.real_voxels_by_value``). Every block then masks
        padding keys (input and window padding) out of its softmax; a ``padding_mask`` the caller passes still
        counts (a voxel is real only if both say so). Returns the network."""
        self.input_padding_value = float(padding_value)
        self.encoder.exclude_padding_keys = True
        return self

    @property
    def family(self) -> str | None:
        """The encoder family from the preset (``swin_unetr`` or ``smit``)."""
        return self.encoder.family

    def no_weight_decay(self) -> set[str]:
        """Parameters exempt from weight decay (timm's convention): the encoder's (``SwinEncoder.no_weight_decay``)
        and every 1-D parameter of the decoder (biases, norm scales and shifts)."""
        return ({f"encoder.{n}" for n in self.encoder.no_weight_decay()}
                | {f"decoder.{n}" for n, p in self.decoder.named_parameters() if p.ndim <= 1})

    @property
    def gradient_checkpointing(self) -> bool:
        return self.encoder.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.encoder.gradient_checkpointing = bool(value)

    def check_input_size(self, spatial: tuple[int, ...]) -> None:
        """Raise ``UserError`` naming the nearest valid sides when a side is not a multiple of the divisor (32)."""
        bad = [(axis, s) for axis, s in zip("ZYX", spatial) if s % self.divisor]
        if bad:
            parts = [f"{axis}={s} (use {valid_neighbours(s, self.divisor)[0]} or {valid_neighbours(s, self.divisor)[1]})"
                     for axis, s in bad]
            raise UserError(f"input sides must be multiples of {self.divisor}: " + ", ".join(parts))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, C, Z, Y, X)``; ``padding_mask`` bool ``(B, Z, Y, X)`` or ``(B, 1, Z, Y, X)``, True on real voxels."""
        if x.ndim != 5:
            raise UserError(f"expected a (B, C, Z, Y, X) tensor, got shape {tuple(x.shape)}")
        self.check_input_size(tuple(x.shape[2:]))
        if self.input_padding_value is not None:
            real = real_voxels_by_value(x, self.input_padding_value)
            if padding_mask is not None:
                real = real & (padding_mask if padding_mask.ndim == 4 else padding_mask[:, 0]).bool()
            padding_mask = real
        x = _swap_xz(x).contiguous()  # into the checkpoints' (X, Y, Z)
        if padding_mask is not None:
            m = padding_mask if padding_mask.ndim == 5 else padding_mask.unsqueeze(1)
            padding_mask = _swap_xz(m)
        feats = self.encoder(x, padding_mask)
        return _swap_xz(self.decoder(x, feats)).contiguous()  # back to nnU-Net's (Z, Y, X)

    def attention_probe(self, callback: ProbeCallback):
        """Same as ``net.encoder.attention_probe(callback)``: explicit-softmax attention, one event per block."""
        return self.encoder.attention_probe(callback)

    def compute_conv_feature_map_size(self, input_size) -> int:
        """Rough count of activation elements for one sample of spatial ``input_size`` (Z, Y, X), the planner's
        memory proxy (as in dynamic-network-architectures): every decoder convolution output, plus per transformer
        block 12 C values per (window-padded) token (norms, qkv, attention output, projection, MLP 4C, residuals);
        the fused attention stores no N x N maps."""
        size = tuple(int(s) for s in input_size)
        total = 0
        for name, mod in self.decoder.named_modules():
            if isinstance(mod, (nn.Conv3d, nn.ConvTranspose3d)):
                level = DECODER_LEVELS[name.split(".")[0]]
                total += mod.out_channels * prod(max(1, s // 2 ** level) for s in size)
        enc = self.encoder
        arch = {"patch_size": list(enc.patch_size), "window_size": list(enc.window_size), "depths": list(enc.depths),
                "shrink_window": enc.shrink_window}
        for st in stage_windows(list(size), arch):
            total += enc.depths[st.stage] * 12 * enc.embed_dim * 2 ** st.stage * prod(st.padded_size)
        return int(total)
