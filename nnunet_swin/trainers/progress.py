"""The trainers' machine-readable progress: one JSON line per event on standard output, for our workflows.

Workflows that run stock ``nnUNetv2_train`` in a subprocess (the demo, the study) follow training through these
lines, never through nnU-Net's human-readable log wording, which may change between nnU-Net releases. A line is
``PROGRESS_PREFIX`` followed by a JSON object with an ``event`` key:

- ``{"event": "start", "epoch": first epoch (0, or the resumed one), "num_epochs": N}``
- ``{"event": "encoder", "text": the pretrained-encoder load report}``
- ``{"event": "epoch", "epoch": e (0-based, just finished), "num_epochs": N, "train_loss": ..., "val_loss": ...,
  "pseudo_dice": mean foreground pseudo-Dice of the epoch, "ema_pseudo_dice": ...}``

Undefined numbers are ``null`` (strict JSON).
"""
from __future__ import annotations

import json

from nnunet_swin.io import dumps_json

PROGRESS_PREFIX = "nnunet-swin-progress "


def progress_line(event: str, **fields) -> str:
    """One progress line (without newline)."""
    return PROGRESS_PREFIX + dumps_json({"event": event, **fields}, indent=None).strip()


def parse_progress_line(line: str) -> dict | None:
    """The record of a progress line, or None for any other line (also a malformed one)."""
    start = line.find(PROGRESS_PREFIX)
    if start < 0:
        return None
    try:
        record = json.loads(line[start + len(PROGRESS_PREFIX):])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "event" in record else None
