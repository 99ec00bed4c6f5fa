"""Networks: one 3D Swin encoder (SMIT and Swin UNETR are configurations), the segmentation network nnU-Net builds,
attention probing, and pretrained-checkpoint adapters. Presets and token-grid geometry live in ``presets`` and
``geometry`` (torch-free), token kinds in ``token_kinds``; the CPU-only speed kernels in ``cpu_kernels``, behind one
switch (CUDA runs the plain layers)."""
from nnunet_swin.networks.attention import AttentionEvent
from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.networks.segmentation import SwinSegmentationNetwork

__all__ = ["AttentionEvent", "SwinEncoder", "SwinSegmentationNetwork", "load_pretrained_encoder",
           "inspect_checkpoint", "LoadReport", "Inspection"]


def __getattr__(name):
    if name in ("load_pretrained_encoder", "inspect_checkpoint", "LoadReport", "Inspection"):
        from nnunet_swin.networks import checkpoints
        return getattr(checkpoints, name)
    raise AttributeError(name)
