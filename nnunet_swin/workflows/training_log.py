"""Per-epoch training records from an nnU-Net checkpoint (its logger state), as a table and a figure."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.io import save_figure

LOG_COLUMNS = {"train_losses": "train_loss", "val_losses": "val_loss", "mean_fg_dice": "pseudo_dice",
               "ema_fg_dice": "ema_pseudo_dice", "lrs": "learning_rate"}


def training_curve(checkpoint_file: str | os.PathLike) -> pd.DataFrame:
    """One row per finished epoch: train/val loss, validation pseudo-Dice (and its EMA), lr, epoch seconds."""
    import torch

    ckpt = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    log = ckpt["logging"]
    n = min(len(log.get(k, [])) for k in LOG_COLUMNS)
    table = pd.DataFrame({"epoch": np.arange(n)})
    for key, column in LOG_COLUMNS.items():
        table[column] = [float(v) for v in log[key][:n]]
    starts, ends = log.get("epoch_start_timestamps", []), log.get("epoch_end_timestamps", [])
    if len(starts) >= n and len(ends) >= n:
        table["epoch_seconds"] = np.asarray(ends[:n], float) - np.asarray(starts[:n], float)
    return table


def plot_training_curve(table: pd.DataFrame, path: str | os.PathLike, title: str = "training") -> Path:
    """Loss (left), pseudo-Dice (middle) and learning rate (right) per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.style.context("default"):  # nnU-Net's progress plot may have left seaborn styling behind
        return _draw(table, Path(path), title, plt)


def _draw(table: pd.DataFrame, path: Path, title: str, plt) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(table["epoch"], table["train_loss"], label="train")
    axes[0].plot(table["epoch"], table["val_loss"], label="validation")
    axes[0].set(xlabel="epoch", ylabel="Dice + CE loss", title="loss")
    axes[0].legend()
    axes[1].plot(table["epoch"], table["pseudo_dice"], label="pseudo-Dice (val patches)")
    axes[1].plot(table["epoch"], table["ema_pseudo_dice"], label="EMA")
    axes[1].set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title="validation pseudo-Dice")
    axes[1].legend()
    axes[2].plot(table["epoch"], table["learning_rate"])
    axes[2].set(xlabel="epoch", ylabel="lr", title="warmup + cosine")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(path, fig, dpi=110)


def progress_curve(log_text: str) -> pd.DataFrame | None:
    """The per-epoch records of our trainers' progress lines (``trainers.progress``) in a training log's text, the
    last record of each epoch kept (a resumed run repeats epochs): epoch, train/val loss, pseudo-Dice and its EMA,
    and ``num_epochs`` (the planned schedule). None when the text holds no epoch line."""
    from nnunet_swin.trainers.progress import parse_progress_line

    epochs, planned = {}, None
    for line in log_text.splitlines():
        record = parse_progress_line(line)
        if record is None:
            continue
        planned = record.get("num_epochs", planned)
        if record["event"] == "epoch" and record.get("epoch") is not None:
            epochs[int(record["epoch"])] = record
    if not epochs:
        return None
    table = pd.DataFrame([{"epoch": e, **{k: r.get(k) for k in ("train_loss", "val_loss", "pseudo_dice",
                                                                     "ema_pseudo_dice")}}
                          for e, r in sorted(epochs.items())])
    table[["train_loss", "val_loss", "pseudo_dice", "ema_pseudo_dice"]] = table[
        ["train_loss", "val_loss", "pseudo_dice", "ema_pseudo_dice"]].astype(float)
    table.attrs["num_epochs"] = planned
    return table


_NNUNET_LINES = {"train_loss": re.compile(r": train_loss (\S+)"), "val_loss": re.compile(r": val_loss (\S+)"),
                 "pseudo_dice": re.compile(r": Pseudo dice \[(.*)\]")}
_NNUNET_EPOCH = re.compile(r": Epoch (\d+)\s*$")


def _dice_values(text: str) -> list[float]:
    """The numbers of nnU-Net's printed list: ``0.5, 0.7`` or ``np.float32(0.5), np.float32(0.7)``."""
    inner = re.findall(r"np\.float\d+\(([^)]*)\)", text) or text.split(",")
    out = []
    for v in inner:
        try:
            out.append(float(v))
        except ValueError:
            continue
    return out


def nnunet_log_curve(log_text: str) -> pd.DataFrame | None:
    """Per-epoch train/val loss and mean pseudo-Dice from a stock nnU-Net trainer's printed epoch lines (``Epoch N``,
    ``train_loss``, ``val_loss``, ``Pseudo dice [...]``), for trainers that print no progress lines. None when the
    text holds none; its wording is nnU-Net 2.8's and may change between releases."""
    epochs: dict[int, dict] = {}
    current = None
    for line in log_text.splitlines():
        if (hit := _NNUNET_EPOCH.search(line)):
            current = int(hit.group(1))
            epochs[current] = {"epoch": current}
            continue
        for key, pattern in _NNUNET_LINES.items():
            if current is not None and (hit := pattern.search(line)):
                values = _dice_values(hit.group(1)) if key == "pseudo_dice" else [float(hit.group(1))]
                epochs[current][key] = float(np.mean(values)) if values else float("nan")
    rows = [r for r in epochs.values() if {"train_loss", "val_loss", "pseudo_dice"} <= set(r)]
    if not rows:
        return None
    table = pd.DataFrame(rows)
    table["ema_pseudo_dice"] = float("nan")
    return table
