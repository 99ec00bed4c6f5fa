"""Shim for nnU-Net's trainer lookup (`nnUNet_extTrainer`): our trainers, imported from their real module."""
from nnunet_swin.trainers import *  # noqa: F401,F403
