"""Tumour-aware intensity augmentation (the paper's eq. 1), as a batchgeneratorsv2 transform.

    I'(x) = alpha * I(x) + beta   where the tumour mask M(x) > 0,
    I'(x) = I(x)                  elsewhere,
    alpha ~ U(0.5, 1.5), beta ~ U(-0.2, 0.2), applied to a sample with probability 0.3.

Intensity scale. The paper's images were clipped at the 99th percentile and min-max normalised to [0, 1] before
the perturbation; ours arrive z-score normalised by nnU-Net's preprocessing. So the transform is applied in the
sample's own [0, 1] frame: with ``lo``/``hi`` the sample's ``reference_percentiles`` (default 0th and 99th, the
paper's clip) over its non-padding voxels, per channel,

    u = (I - lo) / (hi - lo),   u' = alpha * u + beta,   I' = lo + (hi - lo) * u'
      = alpha * (I - lo) + lo + beta * (hi - lo).

Hence ``alpha`` scales tumour contrast around the sample's darkest intensity exactly as in the paper, and ``beta``
is a shift of 0.2 of the sample's intensity spread at most. The sample is the crop the data loader produced (its
statistics stand for the paper's per-volume ones). When the plans already scale images to [0, 1]
(``-normalization rescale01``), ``reference_percentiles=None`` applies eq. 1 verbatim (lo = 0, hi = 1); the trainers
choose this from the plans' ``swin`` block.

Several channels (e.g. T2 + DWI): the paper has one. Here ``alpha`` and ``beta`` are drawn independently per
channel by default (``per_channel=True``), since a tumour's contrast differs between sequences; ``per_channel=False``
uses one draw for all channels.

Never touched: voxels labelled -1 (padding added by the spatial transforms) and background (label 0), also
excluded from the ``lo``/``hi`` statistics when they are padding. A sample with no tumour voxel passes through
unchanged. Shape and dtype are preserved. Works for ``(C, X, Y)`` and ``(C, X, Y, Z)`` tensors (nnU-Net hands
per-sample tensors in its own axis order, (C, Z, Y, X) for our 3D plans; the transform is axis-agnostic).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform


def tumor_mask(segmentation: torch.Tensor, tumor_labels: Sequence[int] | None = None) -> torch.Tensor:
    """Boolean mask of tumour voxels from one segmentation channel (any spatial shape).

    ``tumor_labels=None`` means every foreground label (> 0); padding (-1) and background (0) are never tumour.
    """
    if tumor_labels is None:
        return segmentation > 0
    labels = torch.as_tensor([int(lab) for lab in tumor_labels if int(lab) > 0], dtype=segmentation.dtype)
    if labels.numel() == 0:
        return torch.zeros_like(segmentation, dtype=torch.bool)
    return torch.isin(segmentation, labels)


def perturb_tumor_intensity(image: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor, alpha: float, beta: float,
                            reference_percentiles: tuple[float, float] | None = (0.0, 99.0)) -> torch.Tensor:
    """Eq. (1) on a copy of ``image`` (C, *spatial): tumour voxels get ``alpha * (I - lo) + lo + beta * (hi - lo)``.

    ``mask`` (tumour) and ``valid`` (non-padding) are boolean tensors of the spatial shape; ``lo``/``hi`` are the
    channel's ``reference_percentiles`` over ``valid`` voxels, or 0 and 1 when ``reference_percentiles`` is None
    (images already scaled to [0, 1] by the plans' normalisation: eq. 1 verbatim). ``alpha``/``beta`` are scalars
    or one value per channel. Returns a new tensor of the same dtype and shape.
    """
    out = image.clone()
    if not bool(mask.any()):
        return out
    mask_np = mask.cpu().numpy()
    valid_np = valid.cpu().numpy() | mask_np
    alphas = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (image.shape[0],))
    betas = np.broadcast_to(np.asarray(beta, dtype=np.float64), (image.shape[0],))
    for c in range(image.shape[0]):
        channel = image[c].detach().cpu().numpy().astype(np.float64, copy=False)
        if reference_percentiles is None:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = np.percentile(channel[valid_np], reference_percentiles)
        spread = max(float(hi - lo), 0.0)
        new = alphas[c] * (channel[mask_np] - lo) + lo + betas[c] * spread
        out[c][mask] = torch.as_tensor(new, dtype=image.dtype, device=image.device)
    return out


class TumorAwareIntensityTransform(BasicTransform):
    """Scale and shift the intensities inside the tumour mask of one sample (the paper's tumour-aware augmentation).

    Insert it after the spatial transforms and before ``RemoveLabelTansform(-1, 0)`` so that padding (-1) is still
    distinguishable from background. Reads ``data_dict['segmentation'][seg_channel]``, writes only
    ``data_dict['image']``.

    Args:
        alpha_range: multiplicative factor range, U(0.5, 1.5) in the paper.
        beta_range: additive shift range in units of the sample's intensity spread, U(-0.2, 0.2) in the paper.
        p_per_sample: probability that a sample is perturbed at all (0.3 in the paper).
        tumor_labels: labels that count as tumour; ``None`` = all foreground labels.
        reference_percentiles: percentiles defining the sample's [0, 1] frame (default: min and the 99th, the
            paper's clip); None for images already in [0, 1].
        seg_channel: segmentation channel holding the labels.
        per_channel: draw alpha and beta per image channel (default) or once for all channels.
    """

    def __init__(self, alpha_range: tuple[float, float] = (0.5, 1.5), beta_range: tuple[float, float] = (-0.2, 0.2),
                 p_per_sample: float = 0.3, tumor_labels: Sequence[int] | None = None,
                 reference_percentiles: tuple[float, float] | None = (0.0, 99.0), seg_channel: int = 0,
                 per_channel: bool = True):
        super().__init__()
        if not (alpha_range[0] <= alpha_range[1] and beta_range[0] <= beta_range[1]):
            raise ValueError(f"ranges must be (low, high); got alpha {alpha_range}, beta {beta_range}")
        if not 0.0 <= p_per_sample <= 1.0:
            raise ValueError(f"p_per_sample must be in [0, 1], got {p_per_sample}")
        if reference_percentiles is not None and not 0.0 <= reference_percentiles[0] < reference_percentiles[1] <= 100:
            raise ValueError(f"reference_percentiles must be increasing within [0, 100], got {reference_percentiles}")
        self.alpha_range = tuple(float(a) for a in alpha_range)
        self.beta_range = tuple(float(b) for b in beta_range)
        self.p_per_sample = float(p_per_sample)
        self.tumor_labels = None if tumor_labels is None else tuple(int(lab) for lab in tumor_labels)
        self.reference_percentiles = (None if reference_percentiles is None
                                      else tuple(float(p) for p in reference_percentiles))
        self.seg_channel = int(seg_channel)
        self.per_channel = bool(per_channel)

    def get_parameters(self, **data_dict) -> dict:
        if torch.rand(1).item() >= self.p_per_sample:
            return {"apply": False}
        image = data_dict.get("image")
        draws = image.shape[0] if (self.per_channel and image is not None) else 1
        u = torch.rand(2, draws).double().numpy()
        alpha = self.alpha_range[0] + u[0] * (self.alpha_range[1] - self.alpha_range[0])
        beta = self.beta_range[0] + u[1] * (self.beta_range[1] - self.beta_range[0])
        return {"apply": True, "alpha": alpha, "beta": beta}

    def apply(self, data_dict: dict, **params) -> dict:
        if not params.get("apply") or data_dict.get("image") is None or data_dict.get("segmentation") is None:
            return data_dict
        seg = data_dict["segmentation"][self.seg_channel]
        mask = tumor_mask(seg, self.tumor_labels)
        if not bool(mask.any()):
            return data_dict
        data_dict["image"] = perturb_tumor_intensity(data_dict["image"], mask, seg >= 0, params["alpha"],
                                                     params["beta"], self.reference_percentiles)
        return data_dict
