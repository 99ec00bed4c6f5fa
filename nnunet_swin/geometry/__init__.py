"""Crop and token-grid geometry, pure numbers (no torch, no nnU-Net): paper eq. 4's padding fraction and the
choice of crop (``padding``), and the Swin encoder's token and window grid per stage (``tokens``).

Ground floor: every peer (planners, trainers, evaluation, analysis, pretraining) and the networks may import it; it
imports nothing of the package but ``errors``.
"""
