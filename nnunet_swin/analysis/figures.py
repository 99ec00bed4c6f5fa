"""Figures of the mechanistic analyses (matplotlib, Agg backend, PNG). Inputs are the tables the analyses write.

Every function writes one PNG through :func:`nnunet_swin.io.save_figure` (atomic).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from nnunet_swin.io import save_figure  # noqa: E402

_COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    return save_figure(path, fig, dpi=130)


def stage_columns(table: pd.DataFrame, prefix: str) -> list[int]:
    """Stages present as ``{prefix}_s{k}`` columns, sorted."""
    return sorted(int(c.rsplit("_s", 1)[1]) for c in table.columns
                  if c.startswith(prefix + "_s") and c.rsplit("_s", 1)[1].isdigit())


def plot_adi_per_stage(tables: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Mean ADI per stage, configurations side by side. Each bar is split into input padding (solid) and Swin
    window padding (hatched); error bars are the standard deviation over scans of the total ADI."""
    labels = list(tables)
    stages = sorted(set().union(*(stage_columns(t, "adi") for t in tables.values())))
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(stages) * max(1, len(labels)) ** 0.5, 3.6))
    x = np.arange(len(stages))
    for i, label in enumerate(labels):
        t = tables[label]
        inp = [t[f"adi_input_s{s}"].mean() for s in stages]
        win = [t[f"adi_window_s{s}"].mean() for s in stages]
        sd = [t[f"adi_s{s}"].std() for s in stages]
        pos = x - 0.4 + width * (i + 0.5)
        c = _COLOURS[i % len(_COLOURS)]
        ax.bar(pos, inp, width, color=c, label=f"{label}: input padding")
        ax.bar(pos, win, width, bottom=inp, color="white", edgecolor=c, hatch="///",
               label=f"{label}: window padding")
        ax.errorbar(pos, np.add(inp, win), yerr=sd, fmt="none", ecolor="black", capsize=3, lw=0.8)
    ax.set_xticks(x, [f"S{s}" for s in stages])
    ax.set_xlabel("Swin stage")
    ax.set_ylabel("mean ADI (share of attention entropy on padding)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax.set_title("Attention dilution per stage (mean ± SD over scans)", fontsize=10)
    return _save(fig, path)


def plot_adi_vs_pf(tables: dict[str, pd.DataFrame], path: str | Path, stage: int = 3) -> Path:
    """Per-scan stage ADI against the padding fraction pf, with a least-squares line and Spearman's rho."""
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    for i, (label, t) in enumerate(tables.items()):
        c = _COLOURS[i % len(_COLOURS)]
        col = f"adi_s{stage}"
        ok = t[["pf", col]].dropna()
        ax.scatter(ok.pf, ok[col], s=14, alpha=0.75, color=c)
        text = label
        if len(ok) >= 3 and ok.pf.nunique() > 1 and ok[col].nunique() > 1:
            rho, p = stats.spearmanr(ok.pf, ok[col])
            slope, icpt = np.polyfit(ok.pf, ok[col], 1)
            xs = np.linspace(ok.pf.min(), ok.pf.max(), 50)
            ax.plot(xs, slope * xs + icpt, color=c, lw=1.2)
            text = f"{label}: Spearman ρ = {rho:.3f} (p = {p:.2g}, n = {len(ok)})"
        ax.plot([], [], color=c, marker="o", lw=1.2, label=text)
    ax.set_xlabel("padding fraction pf = max(1 − L/C, 0)")
    ax.set_ylabel(f"stage-{stage} ADI")
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax.set_title(f"Stage-{stage} ADI vs padding fraction", fontsize=10)
    return _save(fig, path)


def plot_metric_binned(table: pd.DataFrame, metric: str, path: str | Path, stage: int = 3) -> Path:
    """Box plots of an evaluation metric (e.g. sDSC) binned by pf and by stage ADI quartiles (quartiles of the
    rank; tied ADI values, e.g. many zeros, are split in table order)."""
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6), sharey=True)
    pf_bins = pd.cut(table.pf, [-1e-9, 1e-9, 0.25, 0.5, 1.0], labels=["0", "(0, .25]", "(.25, .5]", "> .5"])
    col = f"adi_s{stage}"
    n_q = min(4, table[col].nunique())
    adi_bins = pd.qcut(table[col].rank(method="first"), n_q, labels=[f"Q{i + 1}" for i in range(n_q)]) \
        if n_q >= 2 else pd.Series(["all"] * len(table), index=table.index)
    for ax, bins, xlabel in ((axes[0], pf_bins, "padding fraction pf"),
                             (axes[1], adi_bins, f"stage-{stage} ADI quartile (Q1 lowest)")):
        groups = [(str(b), table.loc[bins == b, metric].dropna()) for b in bins.cat.categories] \
            if hasattr(bins, "cat") else [("all", table[metric].dropna())]
        groups = [(name, g) for name, g in groups if len(g)]
        ax.boxplot([g.to_numpy() for _, g in groups], tick_labels=[f"{n}\n(n={len(g)})" for n, g in groups])
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(metric)
    fig.suptitle(f"{metric} binned by padding and by attention dilution", fontsize=10)
    return _save(fig, path)


def plot_cka_heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], path: str | Path,
                     row_title: str = "model A", col_title: str = "model B") -> Path:
    """Layer x layer CKA heatmap (colour scale fixed to [0, 1])."""
    n = max(len(rows), len(cols))
    fig, ax = plt.subplots(figsize=(2.5 + 0.35 * n, 2.2 + 0.35 * n))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="magma", origin="lower")
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(col_title)
    ax.set_ylabel(row_title)
    fig.colorbar(im, ax=ax, label="linear CKA (minibatch, unbiased HSIC)")
    return _save(fig, path)


def plot_cka_diagonal(diagonal: np.ndarray, labels: list[str], path: str | Path) -> Path:
    """Diagonal CKA per layer (line) and per-layer drift 1 - CKA (bars)."""
    fig, ax = plt.subplots(figsize=(2.5 + 0.35 * len(labels), 3.4))
    x = np.arange(len(labels))
    ax.bar(x, 1 - np.asarray(diagonal), color=_COLOURS[1], label="drift = 1 − CKA")
    ax.plot(x, diagonal, color=_COLOURS[0], marker="o", label="diagonal CKA")
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("CKA / drift")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("Same-layer similarity and drift", fontsize=10)
    return _save(fig, path)


def plot_cluster_validity(validity: pd.DataFrame, chosen: int, path: str | Path) -> Path:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin against k; the chosen k dashed."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
    for ax, (col, title) in zip(axes, (("silhouette", "silhouette (higher better)"),
                                       ("calinski_harabasz", "Calinski-Harabasz (higher better)"),
                                       ("davies_bouldin", "Davies-Bouldin (lower better)"))):
        ax.plot(validity.k, validity[col], marker="o")
        ax.axvline(chosen, color="red", ls="--", lw=1)
        ax.set_xticks(validity.k)
        ax.set_xlabel("k")
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_subtype_scatter(tables: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Contrast vs boundary gradient coloured by subtype, one panel per table (e.g. train and test)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.6), squeeze=False)
    names = sorted(set().union(*(set(t.subtype) for t in tables.values())))
    for ax, (title, t) in zip(axes[0], tables.items()):
        for i, name in enumerate(names):
            sel = t[t.subtype == name]
            ax.scatter(sel.contrast, sel.boundary_gradient, s=18, color=_COLOURS[i % len(_COLOURS)],
                       label=f"{name} (n={len(sel)})")
        ax.set_xlabel("tumour − background contrast")
        ax.set_ylabel("boundary gradient (per mm)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, frameon=False)
    return _save(fig, path)
