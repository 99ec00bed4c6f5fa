"""The pretraining network: the one ``SwinEncoder`` (from a preset) plus the pretraining heads.

``PretrainingNetwork(arch_kwargs, method, student=True|False, ...)``. Student and teacher are two instances; the
teacher is the student's copy without ``mask_token`` and ``decoder`` and is updated by EMA only.

What is read from the encoder, without changing it (its state-dict keys stay those the adapters load):

- the mask token enters through a forward hook on ``encoder.patch_embed``: tokens ``(B, D, H, W, E)`` become
  ``x * (1 - m) + mask_token * m`` with ``m`` the block mask on the patch-token grid (SMIT);
- the last stage's tokens are the output of the last block of ``encoder.layers[-1]`` (a forward hook), ``(B, D3,
  H3, W3, C3)`` at stride ``patch * 2^(stages - 1)`` (16 for every preset; 8E channels), normalised by the heads'
  own ``LayerNorm(C3, eps=1e-6)`` (SMIT). MPD, ITD and SMART's class attention read them;
- the bottleneck (the encoder's last output, stride 32, 16E channels) feeds SMIT's linear reconstruction decoder.

Padding: ``voxel_valid`` ``(B, D, H, W)`` bool is True on real voxels; a stage-3 token is real when at least half of
its voxels are (``token_valid``). Padding tokens are left out of the pooled global token, of the class attention's
keys and (by the losses) of every target.

Axis order: inputs are in the encoder's own order, which is (X, Y, Z) inside the fine-tuned network; the training
loop permutes nnU-Net's (Z, Y, X) crops accordingly, so pretraining sees what fine-tuning feeds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.networks.segmentation import ENCODER_KEYS
from nnunet_swin.pretraining.heads import ClassAttention, ProjectionHead, ReconstructionDecoder
from nnunet_swin.pretraining.masking import to_resolution
from nnunet_swin.pretraining.methods import METHODS, get_method


class PretrainingNetwork(nn.Module):
    """Swin encoder + projection heads (+ SMART class attention; + mask token and MIP decoder for the student)."""

    def __init__(self, arch_kwargs: dict, method: str = "smit", *, student: bool = True, in_channels: int = 1,
                 out_dim: int = 8192, head_hidden: int = 2048, head_bottleneck: int = 256,
                 class_attention_heads: int | None = None, drop_path_rate: float | None = None,
                 norm_class_query: bool = True) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        self.method, self.is_student = method, student
        self.class_token = get_method(method).class_token
        enc_kwargs = {k: arch_kwargs[k] for k in ENCODER_KEYS if k in arch_kwargs}
        if drop_path_rate is not None:
            enc_kwargs["drop_path_rate"] = drop_path_rate
        enc_kwargs["exclude_padding_keys"] = False
        self.encoder = SwinEncoder(in_channels, **enc_kwargs)
        n_stages = len(self.encoder.depths)
        c3 = self.encoder.embed_dim * 2 ** (n_stages - 1)
        self.token_stride = self.encoder.patch_size[0] * 2 ** (n_stages - 1)
        self.bottleneck_stride = self.encoder.patch_size[0] * 2 ** n_stages
        self.token_norm = nn.LayerNorm(c3, eps=1e-6)
        self.patch_head = ProjectionHead(c3, out_dim, head_hidden, head_bottleneck)
        self.global_head = ProjectionHead(c3, out_dim, head_hidden, head_bottleneck)
        if self.class_token:
            heads = class_attention_heads or self.encoder.num_heads[-1]
            self.class_attention = ClassAttention(c3, heads, norm_query=norm_class_query)
            self.class_head = ProjectionHead(c3, out_dim, head_hidden, head_bottleneck)
        if student:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, 1, self.encoder.embed_dim))
            self.decoder = ReconstructionDecoder(self.encoder.channels[-1], self.bottleneck_stride, in_channels)
            self.encoder.patch_embed.register_forward_hook(self._apply_mask_token)
        self.encoder.layers[-1].blocks[-1].register_forward_hook(self._capture_tokens)
        self._block_mask: torch.Tensor | None = None
        self._tokens: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------------ hooks
    def _apply_mask_token(self, module, inputs, out: torch.Tensor) -> torch.Tensor | None:
        if self._block_mask is None:
            return None
        m = to_resolution(self._block_mask, tuple(out.shape[1:4])).unsqueeze(-1).to(out.dtype)
        return out * (1 - m) + self.mask_token.to(out.dtype) * m

    def _capture_tokens(self, module, inputs, out: torch.Tensor) -> None:
        self._tokens = out

    # ---------------------------------------------------------------------------------------------- forward
    def token_validity(self, voxel_valid: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """``(B, D, H, W)`` bool voxels -> ``(B, N3)`` bool stage-3 tokens (real when >= half of its voxels are)."""
        v = F.adaptive_avg_pool3d(voxel_valid.to(torch.float32).unsqueeze(1), grid)[:, 0]
        return (v >= 0.5).flatten(1)

    def forward(self, x: torch.Tensor, voxel_valid: torch.Tensor, block_mask: torch.Tensor | None = None,
                feature_dropout: float = 0.0, dropout_generator: torch.Generator | None = None) -> dict:
        """``x`` ``(B, C, D, H, W)``; ``voxel_valid`` ``(B, D, H, W)`` bool; ``block_mask`` ``(B, Gd, Gh, Gw)`` bool
        (student only; None = unmasked). Returns a dict: ``tokens`` ``(B, N3, C3)`` (normalised), ``grid``,
        ``token_valid`` ``(B, N3)``, ``patch_logits`` ``(B, N3, K)``, ``global_logits`` ``(B, K)``; SMART adds
        ``class_logits`` ``(B, K)`` and ``attention`` ``(B, heads, N3)``; the student adds ``reconstruction`` shaped
        like ``x``. Every head also gives its L2-normalised bottleneck (``<head>_bottleneck``, ``(..., bottleneck)``)
        for the collapse monitor."""
        if block_mask is not None and not self.is_student:
            raise ValueError("the teacher sees unmasked views")
        self._block_mask = block_mask
        try:
            feats = self.encoder(x)
        finally:
            self._block_mask = None
        tokens, self._tokens = self._tokens, None
        b, d, h, w, c = tokens.shape
        grid = (d, h, w)
        tokens = self.token_norm(tokens.reshape(b, d * h * w, c))
        if feature_dropout > 0:
            keep = torch.rand(tokens.shape, generator=dropout_generator, dtype=torch.float32) >= feature_dropout
            tokens = tokens * keep.to(tokens.device, tokens.dtype) / (1.0 - feature_dropout)
        valid = self.token_validity(voxel_valid, grid)
        weights = valid.to(tokens.dtype).unsqueeze(-1)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        out = {"tokens": tokens, "grid": grid, "token_valid": valid}
        out["patch_logits"], out["patch_bottleneck"] = self.patch_head(tokens, with_bottleneck=True)
        out["global_logits"], out["global_bottleneck"] = self.global_head(pooled, with_bottleneck=True)
        if self.class_token:
            cls, attn = self.class_attention(tokens, valid)
            out["class_logits"], out["class_bottleneck"] = self.class_head(cls, with_bottleneck=True)
            out["attention"] = attn
        if self.is_student:
            out["reconstruction"] = self.decoder(feats[-1])
        return out


def build_pair(arch_kwargs: dict, method: str, *, in_channels: int = 1, out_dim: int = 8192, head_hidden: int = 2048,
               head_bottleneck: int = 256, class_attention_heads: int | None = None,
               drop_path_rate: float | None = None, norm_class_query: bool = True
               ) -> tuple[PretrainingNetwork, PretrainingNetwork]:
    """(student, teacher): the teacher starts as an exact copy of the student's shared weights, without gradients,
    in eval mode (no drop path)."""
    kw = dict(in_channels=in_channels, out_dim=out_dim, head_hidden=head_hidden, head_bottleneck=head_bottleneck,
              class_attention_heads=class_attention_heads, norm_class_query=norm_class_query)
    student = PretrainingNetwork(arch_kwargs, method, student=True, drop_path_rate=drop_path_rate, **kw)
    teacher = PretrainingNetwork(arch_kwargs, method, student=False, drop_path_rate=0.0, **kw)
    missing, unexpected = teacher.load_state_dict(student.state_dict(), strict=False)
    if missing or any(not (k == "mask_token" or k.startswith("decoder.")) for k in unexpected):
        raise RuntimeError(f"teacher/student mismatch: missing {missing}, unexpected {unexpected}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.eval()
    return student, teacher


def encoder_state(network: PretrainingNetwork) -> dict[str, torch.Tensor]:
    """The encoder's weights in our own key layout (``encoder.*``), the one ``load_pretrained_encoder`` reads with
    0 missing keys (format ``nnunet_swin``), on CPU."""
    return {f"encoder.{k}": v.detach().cpu().clone() for k, v in network.encoder.state_dict().items()}
