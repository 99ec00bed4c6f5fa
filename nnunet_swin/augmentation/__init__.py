"""Data augmentation: the tumour-aware intensity transform (batchgeneratorsv2)."""
from nnunet_swin.augmentation.tumor_aware import TumorAwareIntensityTransform, perturb_tumor_intensity, tumor_mask

__all__ = ["TumorAwareIntensityTransform", "perturb_tumor_intensity", "tumor_mask"]
