"""Does the pretrained encoder help fine-tuning? SwinACTTrainer from a run's student and teacher encoders and from
random initialisations of the same layout, scored on held-out cases.

    python experiments/pretraining_finetune.py --checkpoint RUN/checkpoint_final.pth --work /tmp/pt_finetune

1. Encoders (``pretraining_encoders.py``): the **student** and **teacher** encoders of one ``nnunet-swin pretrain``
   run (``--checkpoint``), and **random** initialisations of the same layout (``random_seed<s>``: what ``nnunet-swin
   pretrain --seed s`` starts from; seed = the run's seed is the run's own starting weights).
2. Fine-tuning set: the synthetic MRI-like dataset with ``--num_train`` training and ``--num_test`` held-out cases,
   planned by ``nnunet-swin plan_and_preprocess -pl SMITPlanner -backbone smit_tiny -normalization rescale01``
   (images scaled to [0, 1], the range the CT encoder saw).
3. Per fine-tuning seed s (``--seeds``) and arm: the real ``SwinACTTrainer`` (found by name as ``nnUNetv2_train``
   finds it, in its own process with its own ``nnUNet_results`` and ``nnUNet_swin_pretrained``), fold 0, the
   schedule shortened on the instance to ``--epochs x --iterations`` (warmup ``--warmup``); torch, numpy and random
   seeded with s in that process (decoder initialisation, the trainer's sampling; nnU-Net's augmentation workers
   are not seeded). The random arm at seed s starts from ``random_seed<s>``: its seed moves both the encoder's
   initialisation and the fine-tuning; the pretrained arms' seeds move only the fine-tuning (one pretraining run).
   The final checkpoint is predicted on the held-out cases with stock ``nnUNetv2_predict -chk checkpoint_final.pth
   --disable_tta`` and scored with ``nnunet-swin evaluate``.
4. Statistics (``pretraining_encoders.downstream_statistics``): per arm the mean over held-out cases per seed; the
   seed standard deviation; pretrained minus random against twice it (the verdict); per case the mean over seeds,
   paired exact signed-rank test (n, smallest attainable p) and Hodges-Lehmann interval.

Results are written as each run finishes (``per_case.csv``: arm, seed, case, Dice, surface Dice, detection), so a
stopped experiment resumes where it stopped. Writes into ``--output``: per_case.csv, results.json, summary.md.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TRAINER, PLANS, CONFIGURATION = "SwinACTTrainer", "nnUNetSMITPlans", "3d_fullres"
ARMS = ("random", "student", "teacher")
METRICS = ("dice", "surface_dice")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a pretraining run's checkpoint_final.pth")
    p.add_argument("--output", default=str(HERE / "results" / "pretraining_finetune"))
    p.add_argument("--work", default="/tmp/nnunet_swin_pretraining_finetune", help="workspace (data, models)")
    p.add_argument("--dataset_id", type=int, default=621)
    p.add_argument("--num_train", type=int, default=8)
    p.add_argument("--num_test", type=int, default=8)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--iterations", type=int, default=20, help="training iterations per epoch (batch 2)")
    p.add_argument("--val_iterations", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds")
    p.add_argument("--normalization", default="rescale01", choices=("rescale01", "zscore"))
    p.add_argument("--seed", type=int, default=0, help="the synthetic dataset's seed")
    p.add_argument("--train-one", dest="train_one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--ft-seed", dest="ft_seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def train_one(a) -> int:
    """(child process) SwinACTTrainer with the shortened schedule, as the learning-curve experiment trains it,
    seeded with the fine-tuning seed; nnU-Net's variables (this run's nnUNet_results and nnUNet_swin_pretrained)
    come from the environment."""
    import numpy as np
    import torch
    from learning_curve import PLANS as LC_PLANS, TRAINER as LC_TRAINER, train

    assert (LC_TRAINER, LC_PLANS) == (TRAINER, PLANS)
    random.seed(a.ft_seed)
    np.random.seed(a.ft_seed)
    torch.manual_seed(a.ft_seed)
    a.eval_every = a.epochs
    train(a, [])
    return 0


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.train_one:
        return train_one(a)
    import pandas as pd

    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.io import write_csv, write_json, write_text
    from nnunet_swin.workflows.workspace import Workspace, nnunet_swin_command, run_logged, tool
    from pretraining_encoders import downstream_statistics, encoder_checkpoints, statistics_table

    ws = Workspace(Path(a.work).resolve()).create()
    env = ws.environment(num_processes=1, da_processes=1)
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    log = ws.logs / "experiment.log"

    # fine-tuning data and plans
    if not list(ws.raw.glob(f"Dataset{a.dataset_id:03d}_*")):
        make_demo_dataset(ws.raw, a.dataset_id, spec=SyntheticSpec(num_train=a.num_train, num_test=a.num_test,
                                                                   fov_mm=64.0, seed=a.seed), progress=False)
    raw = ws.dataset_folder("raw", a.dataset_id)
    pre = list(ws.preprocessed.glob(f"Dataset{a.dataset_id:03d}_*"))
    if not pre or not (pre[0] / f"{PLANS}.json").is_file():
        run_logged(nnunet_swin_command("plan_and_preprocess", "-d", str(a.dataset_id), "-pl", "SMITPlanner",
                                       "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-c", CONFIGURATION,
                                       "-normalization", a.normalization, "-npfp", "1", "-np", "1", "--quiet"),
                   env, log)
    pre = ws.dataset_folder("preprocessed", a.dataset_id)
    encoders = encoder_checkpoints(a.checkpoint.resolve(), ws.weights / "encoders", a.seeds)

    per_case_path = out / "per_case.csv"
    per_case = pd.read_csv(per_case_path) if per_case_path.is_file() else None
    seconds = {}
    for seed in a.seeds:                               # seed-major: a stopped run leaves whole seeds
        for arm in ARMS:
            run = f"{arm}_seed{seed}"
            if per_case is not None and ((per_case.arm == arm) & (per_case.seed == seed)).any():
                continue
            encoder = encoders[f"random_seed{seed}" if arm == "random" else arm]
            results = ws.root / f"results_{run}"
            run_env = {**env, "nnUNet_results": str(results), "nnUNet_swin_pretrained": str(encoder)}
            fold = results / pre.name / f"{TRAINER}__{PLANS}__{CONFIGURATION}" / "fold_0"
            t0 = time.time()
            if not (fold / "checkpoint_final.pth").is_file():
                run_logged([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--train-one", arm,
                            "--ft-seed", str(seed)], run_env, ws.logs / f"train_{run}.log")
            pred = ws.root / "predictions" / run
            if len(list(pred.glob("*.nii.gz"))) < a.num_test:
                run_logged([tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(pred), "-d",
                            str(a.dataset_id), "-c", CONFIGURATION, "-f", "0", "-tr", TRAINER, "-p", PLANS, "-chk",
                            "checkpoint_final.pth", "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_tta"],
                           run_env, ws.logs / f"predict_{run}.log")
            ev = ws.root / "evaluation" / run
            run_logged(nnunet_swin_command("evaluate", str(raw / "labelsTs"), str(pred), "-o", str(ev),
                                           "--dataset-json", str(raw / "dataset.json"), "-np", "1", "--quiet"),
                       env, log)
            table = pd.read_csv(ev / "metrics_per_case.csv")
            rows = pd.DataFrame({"arm": arm, "seed": seed, "case": table["case_id"], "dice": table["dice"],
                                 "surface_dice": table["surface_dice"],
                                 "detected": table["detected"] if "detected" in table else None})
            per_case = rows if per_case is None else pd.concat([per_case, rows], ignore_index=True)
            write_csv(per_case_path, per_case)
            seconds[run] = round(time.time() - t0, 1)
            print(f"{run}: mean Dice {rows.dice.mean():.4f}, surface Dice {rows.surface_dice.mean():.4f} "
                  f"({seconds[run]:.0f} s)", flush=True)

    per_case = per_case[per_case.seed.isin(a.seeds)]       # the seeds asked for (e.g. the completed ones)
    stats = []
    for metric in METRICS:
        long = per_case.rename(columns={"case": "unit", metric: "value"})[["arm", "seed", "unit", "value"]]
        long = long[long.arm.isin(ARMS)]
        stats += [{**downstream_statistics(long, arm), "metric": metric, "label": metric} for arm in ARMS[1:]]
    seeds_done = sorted(int(s) for s in per_case.seed.unique())
    write_json(out / "results.json", {
        "trainer": TRAINER, "backbone": "smit_tiny", "epochs": a.epochs, "iterations_per_epoch": a.iterations,
        "warmup_epochs": a.warmup, "num_train": a.num_train, "num_test": a.num_test,
        "normalization": a.normalization, "pretraining_run": a.checkpoint.resolve().parent.name,
        "fine_tuning_seeds": seeds_done, "statistics": stats, "seconds_this_invocation": seconds,
        "cpu_count": os.cpu_count()})
    lines = ["# Fine-tuning SwinACTTrainer from a run's student and teacher encoders and from random "
             "initialisations (synthetic MRI-like data, CPU)", "",
             f"- backbone smit_tiny; {a.num_train} training cases (fold 0 of nnU-Net's split), {a.num_test} held-out "
             f"test cases; {a.epochs} epochs x {a.iterations} iterations (batch 2), warmup {a.warmup}; planner "
             f"-normalization {a.normalization}; prediction without test-time mirroring",
             f"- pretraining run: `{a.checkpoint.resolve().parent.name}`; fine-tuning seeds {seeds_done} (the random "
             "arm's seed also sets its initialisation)", ""]
    lines += statistics_table(stats, "metric")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
