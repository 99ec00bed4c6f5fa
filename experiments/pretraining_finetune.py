"""Does our pretraining help fine-tuning? SwinACTTrainer from SMIT, SMART and random weights on a small MRI-like set.

    .venv/bin/python experiments/pretraining_finetune.py --work /tmp/pt_finetune

1. Pretraining set: ``--ct_cases`` synthetic CT-like volumes (``datasets.synthetic_ct``, CT contrast and HU values,
   the anatomy classes of the MRI-like data) plus the real CT volume(s) of ``../shared/data/real``.
2. ``nnunet-swin pretrain --method smit`` and ``--method smart`` on it (``smit_tiny``, 64^3 crops, the demo
   encoder's reduced heads; ``--pretrain_epochs x --pretrain_iterations`` steps), through the real command.
   "random" is a checkpoint of the same layout with random weights (``standin_checkpoint``).
3. Fine-tuning set: the synthetic MRI-like dataset with ``--num_train`` training and ``--num_test`` held-out cases,
   planned by ``nnunet-swin plan_and_preprocess -pl SMITPlanner -backbone smit_tiny -normalization rescale01`` (the
   ACT crop; images scaled to [0, 1] as the paper fine-tunes, the range the CT encoder saw).
4. For each encoder, the real ``SwinACTTrainer`` (found by name as ``nnUNetv2_train`` finds it, in its own process
   with its own ``nnUNet_results``; the schedule shortened on the instance to ``--epochs x --iterations``, warmup
   ``--warmup``; the recipe otherwise unchanged), fold 0 of nnU-Net's split, the same data seed for all three.
   Snapshots at every ``--eval_every`` epochs are predicted on the held-out cases with stock ``nnUNetv2_predict
   -chk`` and scored with ``nnunet-swin evaluate``; the last snapshot of the three is compared with ``nnunet-swin
   compare`` (paired Wilcoxon / McNemar, Bonferroni).

Writes into ``--output``: heldout.csv (per encoder and snapshot), comparison/ (the compare command's tables),
pretrain_log_{smit,smart}.txt, results.json and summary.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"
TRAINER, PLANS, CONFIGURATION = "SwinACTTrainer", "nnUNetSMITPlans", "3d_fullres"
ENCODERS = ("random", "smit", "smart")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=str(HERE / "results" / "pretraining_finetune"))
    p.add_argument("--work", default="/tmp/nnunet_swin_pretraining_finetune", help="workspace (data, models)")
    p.add_argument("--dataset_id", type=int, default=621)
    p.add_argument("--num_train", type=int, default=8)
    p.add_argument("--num_test", type=int, default=8)
    p.add_argument("--ct_cases", type=int, default=8)
    p.add_argument("--pretrain_epochs", type=int, default=20)
    p.add_argument("--pretrain_iterations", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--iterations", type=int, default=25, help="training iterations per epoch (batch 2)")
    p.add_argument("--val_iterations", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--eval_every", type=int, default=10)
    p.add_argument("--normalization", default="rescale01", choices=("rescale01", "zscore"),
                   help="planner -normalization: rescale01 (default) gives the [0, 1] input the CT encoder saw, as "
                        "the paper fine-tunes; zscore is nnU-Net's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-one", dest="train_one", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def train_one(a) -> int:
    """(child process) SwinACTTrainer with the shortened schedule, as the learning-curve experiment trains it;
    nnU-Net's variables (this encoder's nnUNet_results and nnUNet_swin_pretrained) come from the environment."""
    sys.path.insert(0, str(HERE))
    from learning_curve import PLANS as LC_PLANS, TRAINER as LC_TRAINER, train

    assert (LC_TRAINER, LC_PLANS) == (TRAINER, PLANS)
    train(a, [])
    return 0


def snapshots(a) -> list[int]:
    return sorted({e for e in range(a.eval_every, a.epochs + 1, a.eval_every)} | {a.epochs})


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.train_one:
        return train_one(a)
    import pandas as pd

    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.io import write_csv, write_json, write_text
    from nnunet_swin.workflows.demo_encoder import DemoPretraining, pretrain_demo_encoder
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint
    from nnunet_swin.workflows.workspace import Workspace, nnunet_swin_command, run_logged, tool

    ws = Workspace(Path(a.work).resolve()).create()
    env = ws.environment(num_processes=2, da_processes=1)
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    log = ws.logs / "experiment.log"
    seconds = {}

    # fine-tuning data and plans
    if not list(ws.raw.glob(f"Dataset{a.dataset_id:03d}_*")):
        make_demo_dataset(ws.raw, a.dataset_id, spec=SyntheticSpec(num_train=a.num_train, num_test=a.num_test,
                                                                   fov_mm=64.0, seed=a.seed), progress=False)
    raw = ws.dataset_folder("raw", a.dataset_id)
    pre = list(ws.preprocessed.glob(f"Dataset{a.dataset_id:03d}_*"))
    if not pre or not (pre[0] / f"{PLANS}.json").is_file():
        run_logged(nnunet_swin_command("plan_and_preprocess", "-d", str(a.dataset_id), "-pl", "SMITPlanner",
                                       "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-c", CONFIGURATION,
                                       "-normalization", a.normalization, "-npfp", "2", "-np", "2", "--quiet"),
                   env, log)
    pre = ws.dataset_folder("preprocessed", a.dataset_id)
    arch = json.loads((pre / f"{PLANS}.json").read_text())["configurations"][CONFIGURATION]["architecture"][
        "arch_kwargs"]

    # encoders
    real_ct = tuple(sorted(REAL.glob("*lung*_0000.nii.gz")))
    checkpoints, commands = {}, {}
    for method in ("smit", "smart"):
        t0 = time.time()
        settings = DemoPretraining(backbone=arch["backbone"], method=method, epochs=a.pretrain_epochs,
                                   iterations_per_epoch=a.pretrain_iterations, corpus_cases=a.ct_cases, seed=a.seed)
        encoder = pretrain_demo_encoder(ws.weights, env, ws.logs / f"pretrain_{method}.log", settings, real_ct)
        checkpoints[method], commands[method] = encoder.checkpoint, encoder.command
        seconds[f"pretrain_{method}"] = round(time.time() - t0, 1)
        shutil.copy(encoder.checkpoint.parent / "pretrain_log.txt", out / f"pretrain_log_{method}.txt")
        print(f"{method}: {encoder.checkpoint}", flush=True)
    checkpoints["random"] = ws.weights / "random" / f"{arch['backbone']}.pth"
    if not checkpoints["random"].is_file():
        write_standin_checkpoint(arch, checkpoints["random"], seed=a.seed)

    # fine-tuning, prediction and scoring per encoder
    rows = []
    final = {}
    for name in ENCODERS:
        results = ws.root / f"results_{name}"
        run_env = {**env, "nnUNet_results": str(results), "nnUNet_swin_pretrained": str(checkpoints[name])}
        fold = results / pre.name / f"{TRAINER}__{PLANS}__{CONFIGURATION}" / "fold_0"
        t0 = time.time()
        if not (fold / "checkpoint_final.pth").is_file():
            run_logged([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--train-one", name], run_env,
                       ws.logs / f"train_{name}.log")
        seconds[f"train_{name}"] = round(time.time() - t0, 1)
        for epoch in snapshots(a):
            pred = ws.root / "predictions" / name / f"epoch{epoch:03d}"
            if not pred.is_dir() or len(list(pred.glob("*.nii.gz"))) < a.num_test:
                run_logged([tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(pred), "-d",
                            str(a.dataset_id), "-c", CONFIGURATION, "-f", "0", "-tr", TRAINER, "-p", PLANS, "-chk",
                            f"checkpoint_epoch{epoch}.pth", "-device", "cpu", "-npp", "1", "-nps", "1"], run_env,
                           ws.logs / f"predict_{name}.log")
            ev = ws.root / "evaluation" / name / f"epoch{epoch:03d}"
            run_logged(nnunet_swin_command("evaluate", str(raw / "labelsTs"), str(pred), "-o", str(ev),
                                           "--dataset-json", str(raw / "dataset.json"), "-np", "2",
                                           "--quiet"), env, log)
            table = pd.read_csv(ev / "metrics_per_case.csv")
            rows.append({"encoder": name, "epoch": epoch, "mean_dice": float(table["dice"].mean()),
                         "median_dice": float(table["dice"].median()),
                         "mean_surface_dice_2mm": float(table["surface_dice"].mean()),
                         "detection_rate": float(table["detected"].mean()) if "detected" in table else None})
            print(rows[-1], flush=True)
            final[name] = pred
    heldout = pd.DataFrame(rows)
    write_csv(out / "heldout.csv", heldout)
    run_logged(nnunet_swin_command("compare", str(raw / "labelsTs"), *map(str, final.values()), "--names",
                                   *final, "-o", str(out / "comparison"), "--dataset-json",
                                   str(raw / "dataset.json"), "-np", "2", "--quiet"), env, log)
    pairwise = pd.read_csv(out / "comparison" / "comparison_pairwise.csv")
    write_json(out / "results.json", {
        "trainer": TRAINER, "backbone": arch["backbone"], "epochs": a.epochs, "iterations_per_epoch": a.iterations,
        "warmup_epochs": a.warmup, "num_train": a.num_train, "num_test": a.num_test, "normalization": a.normalization,
        "pretraining": {m: commands[m] for m in commands}, "pretraining_volumes": a.ct_cases + len(real_ct),
        "heldout": rows, "seconds": seconds, "cpu_count": os.cpu_count()})
    last = heldout[heldout.epoch == max(snapshots(a))]
    lines = ["# Fine-tuning SwinACTTrainer from SMIT, SMART and random weights (synthetic MRI-like data, CPU)", "",
             f"- backbone {arch['backbone']}; {a.num_train} training cases (fold 0 of nnU-Net's split), "
             f"{a.num_test} held-out test cases; {a.epochs} epochs x {a.iterations} iterations, warmup {a.warmup}; "
             f"planner -normalization {a.normalization}",
             f"- pretraining: {a.pretrain_epochs * a.pretrain_iterations} steps on {a.ct_cases} synthetic CT-like + "
             f"{len(real_ct)} real CT volume(s); commands in results.json", "",
             "| encoder | epoch | mean Dice | median Dice | mean surface Dice @2 mm | detection |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['encoder']} | {r['epoch']} | {r['mean_dice']:.3f} | {r['median_dice']:.3f} | "
              f"{r['mean_surface_dice_2mm']:.3f} | {r['detection_rate']:.2f} |" for r in rows]
    lines += ["", f"Paired tests at epoch {int(last.epoch.iloc[0])} (`comparison/comparison_pairwise.csv`):", "",
              "| metric | a | b | test | n | median difference | p | p (Bonferroni) |", "|---|---|---|---|---|---|---|---|"]
    for r in pairwise.to_dict(orient="records"):
        lines.append(f"| {r.get('metric')} | {r.get('model_a')} | {r.get('model_b')} | {r.get('test')} | "
                     f"{r.get('n')} | {r.get('median_difference', float('nan')):.3f} | {r.get('p'):.3g} | "
                     f"{r.get('p_bonferroni'):.3g} |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
