"""The study report's figures (matplotlib, tables in, PNG out through ``io.save_figure``).

- paired per-case plots: one line per test case across the arms, coloured by subtype, missed cases marked;
- training curves per arm: loss and validation pseudo-Dice per epoch;
- the padding-fraction histogram of the test split;
- ADI at the stage comparable with the paper's stage 3 against pf, the paper's stage-3 means overlaid;
- CKA to the pretrained encoder per block, one line per arm, with the random-initialisation floor.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.io import save_figure

SUBTYPE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
MISS_MARK = dict(marker="x", color="black", s=60, linewidths=1.8, zorder=5)
# the paper's stage-3 ADI means (SMIT; Swin UNETR in brackets), Figure 4
PAPER_ADI = {"cubic": (0.076, 0.079), "ACT": (0.007, 0.010)}
PAPER_PF_MEAN = 0.27


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _subtype_colours(subtypes) -> dict:
    names = sorted({str(s) for s in subtypes})
    return {s: SUBTYPE_COLOURS[i % len(SUBTYPE_COLOURS)] for i, s in enumerate(names)}


def paired_cases(per_case: pd.DataFrame, arms: list[str], metric: str, title: str, path: str | os.PathLike,
                 log_scale: bool = False) -> Path:
    """``per_case``: long table (model, case_id, subtype, detected, metric). One line per case across ``arms``
    (x: arm, y: the metric), coloured by subtype; a black cross marks a case the arm missed (Dice < 0.1)."""
    plt = _pyplot()
    colours = _subtype_colours(per_case["subtype"].fillna("?"))
    wide = per_case.pivot_table(index="case_id", columns="model", values=metric, aggfunc="first")
    missed = per_case.pivot_table(index="case_id", columns="model", values="detected", aggfunc="first") == 0
    subtype = per_case.groupby("case_id")["subtype"].first().fillna("?").astype(str)
    arms = [a for a in arms if a in wide.columns]
    x = np.arange(len(arms))
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(arms) + 2), 4.2))
        for case, row in wide[arms].iterrows():
            ax.plot(x, row.to_numpy(float), "-o", color=colours[subtype[case]], alpha=0.55, lw=1, ms=3)
            for i, arm in enumerate(arms):
                if bool(missed.loc[case].get(arm, False)):
                    ax.scatter([x[i]], [row[arm]], **MISS_MARK)
        for name, colour in colours.items():
            ax.plot([], [], "-o", color=colour, label=f"subtype {name}")
        if missed[arms].to_numpy().any():
            ax.scatter([], [], label="missed (Dice < 0.1)", **MISS_MARK)
        ax.set_xticks(x, arms)
        ax.set(ylabel=title, title=f"{title}: one line per test case ({len(wide)})")
        if log_scale:
            ax.set_yscale("log")
            ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        return save_figure(path, fig, dpi=100)


def training_curves(curves: dict[str, pd.DataFrame], path: str | os.PathLike) -> Path:
    """``curves``: arm -> table with epoch, train_loss, val_loss, pseudo_dice (ema_pseudo_dice optional)."""
    plt = _pyplot()
    with plt.style.context("default"):
        fig, (loss, dice) = plt.subplots(1, 2, figsize=(12, 3.8))
        for i, (arm, t) in enumerate(curves.items()):
            colour = f"C{i % 10}"
            loss.plot(t.epoch, t.train_loss, color=colour, label=f"{arm} train")
            loss.plot(t.epoch, t.val_loss, color=colour, ls="--", label=f"{arm} validation")
            dice.plot(t.epoch, t.pseudo_dice, color=colour, alpha=0.35, lw=0.8)
            smooth = t.ema_pseudo_dice if "ema_pseudo_dice" in t and t.ema_pseudo_dice.notna().any() else t.pseudo_dice
            dice.plot(t.epoch, smooth, color=colour, label=arm)
        loss.set(xlabel="epoch", ylabel="Dice + CE loss", title="loss (solid: train, dashed: validation)")
        dice.set(xlabel="epoch", ylabel="pseudo-Dice", ylim=(0, 1),
                 title="validation pseudo-Dice (thin: per epoch, thick: EMA)")
        for ax in (loss, dice):
            ax.xaxis.get_major_locator().set_params(integer=True)
        loss.legend(fontsize=7, ncol=2)
        dice.legend(fontsize=8)
        fig.tight_layout()
        return save_figure(path, fig, dpi=100)


def pf_histogram(pf: pd.Series, path: str | os.PathLike, crop: str) -> Path:
    """Histogram of the padding fraction (eq. 4) of the test scans under the cubic crop."""
    plt = _pyplot()
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.hist(pf, bins=np.linspace(0, 1, 21), color="#888", edgecolor="white")
        ax.axvline(float(np.mean(pf)), color="C0", label=f"mean {np.mean(pf):.2f} (this study)")
        ax.axvline(PAPER_PF_MEAN, color="C3", ls="--", label=f"mean {PAPER_PF_MEAN} (the paper's test cohort)")
        ax.set(xlabel=f"padding fraction pf under the {crop} crop", ylabel="test scans", xlim=(0, 1))
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        return save_figure(path, fig, dpi=100)


def adi_against_pf(adi: pd.DataFrame, stage: int, paper_stage: int, path: str | os.PathLike) -> Path:
    """ADI at demo ``stage`` against the cubic crop's pf of each scan (also for ACT, whose own pf is mostly 0), one
    colour and marker per model; the paper's stage-3 means as horizontal lines."""
    plt = _pyplot()
    col = f"adi_s{stage}"
    cubic = adi[adi.pf > 0].groupby("case_id").pf.max()     # pf of the cubic crop (0 under ACT for most scans)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        for i, (model, t) in enumerate(adi.groupby("model", sort=False)):
            x = t.case_id.map(cubic).fillna(t.pf)
            ax.scatter(x, t[col], color=f"C{i % 10}", marker="osD^vP*X"[i % 8], alpha=0.75,
                       label=f"{model} (mean {t[col].mean():.3f})")
        for (kind, (smit, swin)), colour in zip(PAPER_ADI.items(), ("C3", "C2")):
            ax.axhline(smit, color=colour, ls="--", lw=1, label=f"paper {kind}, SMIT mean {smit}")
            ax.axhline(swin, color=colour, ls=":", lw=1, label=f"paper {kind}, Swin UNETR mean {swin}")
        ax.set(xlabel="padding fraction pf of the cubic crop (eq. 4)", ylabel=f"ADI, stage {stage}",
               title=f"ADI at stage {stage} (the paper's stage {paper_stage}) against pf")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        return save_figure(path, fig, dpi=100)


def cka_lines(diagonals: dict[str, pd.Series], floor: pd.Series | None, path: str | os.PathLike) -> Path:
    """CKA of each block to the pretrained encoder (``diagonals``: arm -> Series block -> CKA), one line per arm;
    the random-initialisation floor dashed when there is one."""
    plt = _pyplot()
    blocks = list(dict.fromkeys(b for d in diagonals.values() for b in d.index))
    x = np.arange(len(blocks))
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for i, (arm, d) in enumerate(diagonals.items()):
            ax.plot(x, d.reindex(blocks).to_numpy(float), "-o", color=f"C{i % 10}", label=arm)
        if floor is not None:
            ax.plot(x, floor.reindex(blocks).to_numpy(float), "k--", label="floor: untrained network")
        ax.set_xticks(x, blocks)
        ax.set(xlabel="encoder block", ylabel="linear CKA to the pretrained encoder", ylim=(0, 1.02),
               title="CKA per block")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save_figure(path, fig, dpi=100)
