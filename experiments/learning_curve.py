"""Does SwinACTTrainer learn? Synthetic data, CPU, a reduced backbone, about 20 minutes.

    .venv/bin/python experiments/learning_curve.py --output /tmp/learning_curve   (the README's venv)

What it does (all in a fresh workspace under --output):
1. the synthetic dataset (32 training cases, 12 held-out test cases, 64 mm field of view);
2. `nnunet-swin plan_and_preprocess -pl SMITPlanner -backbone smit_tiny -inplane_patch 64 64 -pf_threshold 0.03`
   (reduced backbone: embed 12, one block per stage; anisotropic ACT crop 3d_fullres, which the threshold makes
   32x64x64 (Z, Y, X) at 1 mm here: twice the iterations of 64^3 in the same time);
3. a stand-in encoder checkpoint in SMIT's public layout with random weights (no CT weights exist for smit_tiny),
   so the pretrained-loading path runs but the run is, in effect, from random initialisation;
4. the real `SwinACTTrainer` class, looked up by name through nnU-Net's `nnUNet_extTrainer` mechanism, trained in
   this process with a shortened schedule (epochs, iterations per epoch and warmup set on the instance; recipe
   otherwise unchanged: AdamW 3e-4, Dice+CE, tumour-aware augmentation, left-right flips);
5. snapshots every --eval_every epochs, each predicted on the held-out test split with stock `nnUNetv2_predict
   -chk` and scored (Dice; surface Dice etc. when the evaluation package is installed).

Writes curve.csv (per epoch), heldout.csv (per snapshot), curve.png, results.json, summary.md. The defaults are the
run recorded in experiments/results/learning_curve/ (2 CPU cores: 18.4 min of training, held-out mean Dice 0.501 /
0.670 / 0.753 after 20 / 40 / 60 epochs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
from nnunet_swin.evaluation import evaluate_folder
from nnunet_swin.io import save_figure, write_csv, write_json, write_text
from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint
from nnunet_swin.workflows.training_log import training_curve
from nnunet_swin.workflows.workspace import Workspace, nnunet_swin_command, run_logged, tool

TRAINER = "SwinACTTrainer"
PLANS = "nnUNetSMITPlans"
METRIC_SET = "surface Dice @2 mm, Dice, volume ratio, detection"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="learning_curve_output", help="workspace folder")
    p.add_argument("--dataset_id", type=int, default=611)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--iterations", type=int, default=25, help="training iterations per epoch (batch 2)")
    p.add_argument("--val_iterations", type=int, default=4)
    p.add_argument("--warmup", type=int, default=5, help="warmup epochs (the paper: 50 of 500)")
    p.add_argument("--eval_every", type=int, default=20, help="held-out evaluation every N epochs")
    p.add_argument("--num_train", type=int, default=32)
    p.add_argument("--num_test", type=int, default=12)
    p.add_argument("--fov_mm", type=float, default=64.0)
    p.add_argument("--pf_threshold", type=float, default=0.03,
                   help="planner's z-padding threshold (-pf_threshold); lower values plan a shorter z crop")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def prepare(ws: Workspace, a, env, log) -> Path:
    if not list(ws.raw.glob(f"Dataset{a.dataset_id:03d}_*")):
        make_demo_dataset(ws.raw, a.dataset_id, spec=SyntheticSpec(num_train=a.num_train, num_test=a.num_test,
                                                                   fov_mm=a.fov_mm, seed=a.seed), progress=False)
    pre = list(ws.preprocessed.glob(f"Dataset{a.dataset_id:03d}_*"))
    if not pre or not (pre[0] / f"{PLANS}.json").is_file():
        run_logged(nnunet_swin_command("plan_and_preprocess", "-d", str(a.dataset_id), "-pl", "SMITPlanner",
                                       "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-c", "3d_fullres",
                                       "-pf_threshold", str(a.pf_threshold),
                                       "-npfp", "2", "-np", "2", "--quiet"), env, log)
    pre = ws.dataset_folder("preprocessed", a.dataset_id)
    plans = json.loads((pre / f"{PLANS}.json").read_text())
    arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    write_standin_checkpoint(arch, ws.weights / f"{arch['backbone']}.pth", seed=a.seed)
    return pre


def train(a, out_snapshots: list[int]):
    """SwinACTTrainer found by name the way nnUNetv2_train finds it, schedule shortened on the instance."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.set_num_threads(os.cpu_count() or 1)
    trainer = get_trainer_from_args(str(a.dataset_id), "3d_fullres", 0, TRAINER, PLANS, device=torch.device("cpu"))
    trainer.num_epochs, trainer.warmup_epochs = a.epochs, a.warmup
    trainer.recipe_iterations_per_epoch, trainer.recipe_val_iterations_per_epoch = a.iterations, a.val_iterations
    trainer.save_every = 10 ** 6
    original_epoch_end = trainer.on_epoch_end

    def on_epoch_end():
        finished = trainer.current_epoch + 1
        original_epoch_end()
        if finished % a.eval_every == 0 or finished == a.epochs:
            trainer.save_checkpoint(os.path.join(trainer.output_folder, f"checkpoint_epoch{finished}.pth"))
            out_snapshots.append(finished)

    trainer.on_epoch_end = on_epoch_end
    trainer.run_training()
    return Path(trainer.output_folder)


def plot(curve: pd.DataFrame, heldout: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.style.context("default"):  # nnU-Net's progress plot leaves seaborn styling behind in this process
        _plot(curve, heldout, path, plt)


def _plot(curve, heldout, path, plt):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(curve["epoch"] + 1, curve["train_loss"], label="train")
    axes[0].plot(curve["epoch"] + 1, curve["val_loss"], label="validation")
    axes[0].set(xlabel="epoch", ylabel="Dice + CE loss", title="loss")
    axes[0].legend()
    axes[1].plot(curve["epoch"] + 1, curve["ema_pseudo_dice"], label="EMA pseudo-Dice (fold-0 val patches)")
    axes[1].plot(heldout["epoch"], heldout["heldout_mean_dice"], "o-", label="held-out test Dice (full volumes)")
    axes[1].axhline(0.7, color="grey", ls=":", label="0.7")
    axes[1].set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title="SwinACTTrainer, smit_tiny, CPU")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    save_figure(path, fig, dpi=110)


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    ws = Workspace(Path(a.output).resolve()).create()
    env = ws.environment(num_processes=2, da_processes=1)
    os.environ.update(env)  # nnU-Net reads its variables when used, so the in-process trainer sees the workspace
    log = ws.logs / "learning_curve.log"
    t0 = time.time()
    prepare(ws, a, env, log)
    t_prep = time.time() - t0
    snapshots: list[int] = []
    fold = train(a, snapshots)
    t_train = time.time() - t0 - t_prep

    raw = ws.dataset_folder("raw", a.dataset_id)
    rows = []
    for epoch in snapshots:
        pred = ws.root / "predictions" / f"epoch{epoch:03d}"
        run_logged([tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(pred), "-d", str(a.dataset_id),
                    "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-p", PLANS, "-chk", f"checkpoint_epoch{epoch}.pth",
                    "-device", "cpu", "-npp", "1", "-nps", "1"], env, log)
        table = evaluate_folder(raw / "labelsTs", pred, ws.root / "evaluation" / f"epoch{epoch:03d}",
                                subtypes_csv=raw / "subtypes_truth.csv", progress=False).per_case
        row = {"epoch": epoch, "heldout_mean_dice": float(np.nanmean(table["dice"].to_numpy(float))),
               "heldout_median_dice": float(table["dice"].median())}
        if "surface_dice" in table:
            row["heldout_mean_surface_dice_2mm"] = float(table["surface_dice"].mean())
        rows.append(row)
        print(f"epoch {epoch}: held-out mean Dice {row['heldout_mean_dice']:.3f}", flush=True)
    t_total = time.time() - t0

    curve = training_curve(fold / "checkpoint_final.pth")
    heldout = pd.DataFrame(rows)
    write_csv(ws.root / "curve.csv", curve)
    write_csv(ws.root / "heldout.csv", heldout)
    final_table = table
    write_csv(ws.root / "heldout_final_per_case.csv", final_table)
    plot(curve, heldout, ws.root / "curve.png")
    results = {
        "trainer": TRAINER, "plans": PLANS, "backbone": "smit_tiny (reduced: embed 12, depths 1-1-1-1)",
        "init": "stand-in checkpoint with random weights in SMIT's public layout (no CT pretraining)",
        "epochs": a.epochs, "iterations_per_epoch": a.iterations, "warmup_epochs": a.warmup, "batch_size": 2,
        "seconds": {"prepare": round(t_prep, 1), "train": round(t_train, 1), "total": round(t_total, 1)},
        "heldout": rows, "final_heldout_mean_dice": rows[-1]["heldout_mean_dice"], "metric_set": METRIC_SET,
        "cpu_count": os.cpu_count(),
    }
    write_json(ws.root / "results.json", results)
    lines = ["# Learning curve: SwinACTTrainer on synthetic data (CPU)", "",
             f"- backbone {results['backbone']}; init: {results['init']}",
             f"- {a.epochs} epochs x {a.iterations} iterations (batch 2), warmup {a.warmup}; "
             f"train {t_train / 60:.1f} min, total {t_total / 60:.1f} min on {os.cpu_count()} CPU cores", "",
             "| epoch | held-out mean Dice | held-out median Dice |", "|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['heldout_mean_dice']:.3f} | {r['heldout_median_dice']:.3f} |" for r in rows]
    lines += ["", "Final per-case held-out Dice:", "", "| case | Dice |", "|---|---|"]
    lines += [f"| {c} | {d:.3f} |" for c, d in zip(final_table["case_id"], final_table["dice"])]
    write_text(ws.root / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {ws.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
