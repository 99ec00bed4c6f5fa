"""The demo's report: one Markdown file with figures, saying plainly what was reduced and what was not run."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.io import write_csv, write_text
from nnunet_swin.workflows.figures import plot_examples
from nnunet_swin.workflows.training_log import plot_training_curve, training_curve


@dataclass
class DemoFacts:
    settings: dict
    workspace: Path
    raw: Path
    model_folder: Path
    fold: int
    predictions: Path
    per_case: pd.DataFrame
    metric_set: str
    plans_configuration: dict
    commands: list[str]
    seconds: dict[str, float]
    encoder: object            # demo_encoder.DemoEncoder: the checkpoint, the command that made it, one sentence


def _table(frame: pd.DataFrame, floats: str = "{:.3f}") -> list[str]:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [floats.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Detection as yes/no (the evaluation table stores it as 0/1, NaN for an empty reference)."""
    frame = frame.copy()
    if "detected" in frame:
        frame["detected"] = [("yes" if v else "no") if v == v else "n/a" for v in frame["detected"]]
    return frame


def write_demo_report(facts: DemoFacts, folder: str | os.PathLike) -> Path:
    """Write ``folder/report.md`` plus ``training_curve.png`` and ``examples.png``; return the Markdown path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fold_dir = facts.model_folder / f"fold_{facts.fold}"
    curve = training_curve(fold_dir / "checkpoint_final.pth")
    write_csv(folder / "training_curve.csv", curve)
    plot_training_curve(curve, folder / "training_curve.png", title=f"{facts.settings['trainer']} (CPU demo)")

    per_case = facts.per_case.sort_values("dice", ascending=False).reset_index(drop=True)
    picks = per_case.iloc[[0, len(per_case) // 2, len(per_case) - 1]] if len(per_case) >= 3 else per_case
    examples = [(f"{r.case_id} (Dice {r.dice:.2f})", facts.raw / "imagesTs" / f"{r.case_id}_0000.nii.gz",
                 facts.raw / "labelsTs" / f"{r.case_id}.nii.gz", facts.predictions / f"{r.case_id}.nii.gz")
                for r in picks.drop_duplicates("case_id").itertuples()]
    plot_examples(examples, folder / "examples.png", title="best / median / worst test case")

    cfg = facts.plans_configuration
    swin = cfg.get("swin", {})
    z_pad = swin.get("padding_fraction", {}).get("z", {})
    arch = cfg["architecture"]["arch_kwargs"]
    report_file = fold_dir / "pretrained_encoder_report.txt"
    load_report = report_file.read_text().strip() if report_file.is_file() else "(no report found)"
    shown = [c for c in ["case_id", "subtype", "dice", "surface_dice", "volume_ratio", "detected"] if c in per_case]
    mean_dice = float(np.nanmean(per_case["dice"].to_numpy(float)))
    total = sum(facts.seconds.values())
    s = facts.settings

    lines = [
        "# nnunet-swin demo report", "",
        f"End to end on CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}): synthetic "
        f"dataset -> `nnunet-swin plan_and_preprocess` -> stock `nnUNetv2_train` -> stock `nnUNetv2_predict` -> "
        f"evaluation. Total {total / 60:.1f} min.", "",
        "## What is reduced or stood in (read this first)", "",
        f"- **Backbone: `{arch['backbone']}`**, a reduced configuration (embed dim {arch['embed_dim']}, depths "
        f"{arch['depths']}, heads {arch['num_heads']}) so that CPU training fits in minutes. The paper's SMIT is "
        "embed 48, depths (2, 2, 12, 2).",
        "- **No CT-pretrained weights.** None can be downloaded here and none exist for the reduced backbone. The "
        f"encoder is {facts.encoder.description}: `{facts.encoder.checkpoint}` (what it is, from the checkpoint's "
        "metadata: method, steps, corpus, which encoder was exported and whether the collapse monitor saw the "
        "distillation collapse). Nothing here measures CT-to-MRI transfer.",
        f"- **Short schedule:** `{s['trainer']}`: {len(curve)} epochs (the recipe: 500 epochs x 250 iterations).",
        f"- **Synthetic data:** {s['num_train']} training and {s['num_test']} test cases, {s['fov_mm']:g} mm field "
        "of view, bright/sharp and dark/diffuse tumour subtypes.", "",
        "## Commands that ran", "", "```"] + facts.commands + ["```", "",
        "## Plans (3d_fullres, the ACT geometry)", "",
        f"- patch (Z, Y, X) {cfg['patch_size']} at spacing {cfg['spacing']} mm, batch {cfg['batch_size']}; kind "
        f"`{swin.get('kind', '?')}`",
        f"- z padding fraction of the crop over training cases: mean {z_pad.get('mean_pf', float('nan')):.3f}, "
        f"share of padded cases {z_pad.get('share_padded', float('nan')):.2f}", "",
        "## Pretrained-encoder load report", "", "```", load_report, "```", "",
        "## Training", "", "![training curve](training_curve.png)", "",
        f"Final epoch: train loss {curve['train_loss'].iloc[-1]:.3f}, validation pseudo-Dice "
        f"{curve['pseudo_dice'].iloc[-1]:.3f} (EMA {curve['ema_pseudo_dice'].iloc[-1]:.3f}); validation = fold "
        f"{facts.fold} of nnU-Net's 5-fold split, on patches.", "",
        "## Held-out test split", "",
        f"Metrics: {facts.metric_set}. Mean Dice **{mean_dice:.3f}** over {len(per_case)} cases.", "",
        ] + _table(_readable(per_case[shown])) + ["", "![examples](examples.png)", "",
        "## Time per stage", ""] + [f"- {k}: {v:.0f} s" for k, v in facts.seconds.items()] + ["",
        "## Files", "",
        f"- workspace: `{facts.workspace}` (nnUNet_raw, nnUNet_preprocessed, nnUNet_results, logs)",
        f"- model: `{facts.model_folder}`",
        f"- predictions: `{facts.predictions}`",
        f"- evaluation: `{facts.workspace / 'evaluation'}`", ""]
    path = folder / "report.md"
    write_text(path, "\n".join(lines))
    return path
