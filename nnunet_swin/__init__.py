"""nnunet-swin: fine-tune CT-pretrained 3D Swin transformers (SMIT, Swin UNETR) on MRI inside nnU-Net v2.

Implements Rangnekar et al., "Tumor-aware augmentation with task-guided attention analysis improves rectal
cancer segmentation from magnetic resonance images": padding-aware anisotropic crops (ACT), tumour-aware
intensity augmentation (TA), the attention dilution index (ADI), CKA feature reuse and the paper's evaluation.
"""

__version__ = "0.1.0"
