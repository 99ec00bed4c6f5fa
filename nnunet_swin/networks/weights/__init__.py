"""Pretrained weights: where the checkpoint is, reading it, its format, shape adaptation, the load report, and the
metadata our own checkpoints carry.

- ``location``: ``resolve_pretrained_checkpoint(backbone, value=None)`` (argument, then ``$nnUNet_swin_pretrained``),
  ``checkpoints_to_inspect``;
- ``reading``: ``read_checkpoint`` (safe ``torch.load``), ``unwrap``, ``strip_key_prefixes``;
- ``formats``: the ``FORMATS`` registry of pure key functions, ``detect_format``, ``map_keys``;
- ``adaptation``: ``adapt_state`` (channel tiling, relative-position table interpolation);
- ``report``: ``LoadReport``, ``Inspection``;
- ``loading``: ``checkpoint_filter``, ``load_pretrained_encoder``, ``inspect_checkpoint``, ``describe_checkpoints``
  (what ``nnunet-swin weights inspect`` prints);
- ``metadata``: the schema of ``nnunet-swin pretrain`` checkpoints (torch-free).
"""
from nnunet_swin.networks.weights.formats import FORMATS, detect_format, map_keys
from nnunet_swin.networks.weights.loading import (checkpoint_filter, describe_checkpoints, inspect_checkpoint,
                                                  load_pretrained_encoder)
from nnunet_swin.networks.weights.location import (CHECKPOINT_SUFFIXES, PRETRAINED_ENV, checkpoint_files_in,
                                                   resolve_pretrained_checkpoint)
from nnunet_swin.networks.weights.reading import read_checkpoint, strip_key_prefixes, unwrap
from nnunet_swin.networks.weights.report import Inspection, LoadReport

__all__ = ["CHECKPOINT_SUFFIXES", "FORMATS", "Inspection", "LoadReport", "PRETRAINED_ENV", "checkpoint_files_in",
           "checkpoint_filter", "describe_checkpoints", "detect_format", "inspect_checkpoint", "load_pretrained_encoder", "map_keys",
           "read_checkpoint", "resolve_pretrained_checkpoint", "strip_key_prefixes", "unwrap"]
