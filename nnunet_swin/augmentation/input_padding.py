"""Keep the input's padding exact through the intensity augmentations (the Masked arm's training pipeline).

The Masked arm finds padding from the input itself: a voxel equal to the padding value (0) in every channel
(``networks.token_kinds.real_voxels_by_value``). nnU-Net's data loader and spatial augmentation pad with exactly 0,
and so does ``nnUNetv2_predict``; but the intensity augmentations that follow the spatial block in training (Gaussian
noise, contrast, gamma, simulated low resolution, the tumour-aware transform) would move padded voxels off 0, and the
network would see "real" noise where inference sees padding. ``PreserveInputPadding`` wraps those transforms: it
records the voxels that are padding when it is entered and sets them back to the padding value when they are done,
so the rule picks out the same tokens in training as in prediction.

Placement (``wrap_intensity_block``): everything after nnU-Net's ``SpatialTransform`` (and ``Convert2DTo3DTransform``)
up to the first transform that moves voxels or edits labels (``MirrorTransform``, ``MaskImageTransform``,
``RemoveLabelTansform``). Mirroring moves padding and image together, and ``MaskImageTransform`` only writes zeros,
which the rule treats as padding at inference as well.
"""
from __future__ import annotations

from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform
from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform

_STOP = (MirrorTransform, MaskImageTransform, RemoveLabelTansform, ConvertSegmentationToRegionsTransform)


class PreserveInputPadding(BasicTransform):
    """Run ``transforms`` on a sample, then reset the voxels that were ``padding_value`` in every channel before."""

    def __init__(self, transforms: list[BasicTransform], padding_value: float = 0.0) -> None:
        super().__init__()
        self.inner = ComposeTransforms(list(transforms))
        self.padding_value = float(padding_value)

    @property
    def transforms(self) -> list[BasicTransform]:
        return self.inner.transforms

    def apply(self, data_dict: dict, **params) -> dict:
        image = data_dict.get("image")
        if image is None:
            return self.inner(**data_dict)
        padding = (image == self.padding_value).all(dim=0)
        data_dict = self.inner(**data_dict)
        data_dict["image"][:, padding] = self.padding_value
        return data_dict


def wrap_intensity_block(pipeline: ComposeTransforms, padding_value: float = 0.0) -> ComposeTransforms:
    """Wrap the transforms between nnU-Net's spatial block and the first mirroring / mask / label transform in one
    ``PreserveInputPadding`` (in place; returns the pipeline). Raises ``RuntimeError`` if the pipeline has no
    ``SpatialTransform`` (a changed nnU-Net)."""
    items = pipeline.transforms
    spatial = [i for i, t in enumerate(items) if isinstance(t, SpatialTransform)]
    if not spatial:
        raise RuntimeError("nnU-Net's training pipeline has no SpatialTransform; cannot place the padding guard")
    start = spatial[0] + 1
    if start < len(items) and isinstance(items[start], Convert2DTo3DTransform):
        start += 1
    stop = next((i for i in range(start, len(items)) if isinstance(items[i], _STOP)), len(items))
    items[start:stop] = [PreserveInputPadding(items[start:stop], padding_value)]
    return pipeline
