"""Networks: one 3D Swin encoder (SMIT and Swin UNETR are configurations), the segmentation network nnU-Net builds,
attention probing, and the pretrained-weights surface (``weights``: location, reading, formats, adaptation, report,
metadata). Presets and token-grid geometry live in ``presets`` and ``geometry`` (torch-free), token kinds in
``token_kinds``, the weight-decay rule in ``weight_decay``; the CPU-only speed kernels in ``cpu_kernels``, behind one
switch (CUDA runs the plain layers)."""
from nnunet_swin.networks.attention import AttentionEvent
from nnunet_swin.networks.encoder import SwinEncoder
from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
from nnunet_swin.networks.weights import Inspection, LoadReport, inspect_checkpoint, load_pretrained_encoder

__all__ = ["AttentionEvent", "SwinEncoder", "SwinSegmentationNetwork", "load_pretrained_encoder",
           "inspect_checkpoint", "LoadReport", "Inspection"]
