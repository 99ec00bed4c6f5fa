"""Shim for nnU-Net's trainer lookup (`nnUNet_extTrainer`): our trainers, imported from their real module.

Importing it also makes our ``UserError``s end as one line under stock ``nnUNetv2_train`` / ``nnUNetv2_predict``
(see :func:`nnunet_swin.errors.install_excepthook`); nnU-Net's own errors keep their tracebacks.
"""
from nnunet_swin.errors import install_excepthook
from nnunet_swin.trainers import *  # noqa: F401,F403

install_excepthook()
