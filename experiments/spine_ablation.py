"""The spine paper's ablation in miniature: plain Swin UNETR, +multi-scale fusion, +adaptive attention, both.

    .venv/bin/python experiments/spine_ablation.py --output /tmp/spine_ablation   (the README's venv)

What it does (in a fresh workspace under --output; CPU, about 30-40 minutes on 2 cores):
1. the synthetic CT-like spine dataset (`nnunet-swin make_demo_dataset --kind spine`: 5-7 vertebrae, discs, canal,
   9 labels), --num_train training and --num_test held-out cases;
2. `nnunet-swin plan_and_preprocess -pl SwinUNETRPlanner -backbone swin_unetr_tiny` (reduced backbone: embed 12, one
   block per stage), then three more plans files that differ only in the variant switches of ``arch_kwargs``
   (same preprocessed data): ``multiscale_fusion``, ``adaptive_attention``, both;
3. the same stand-in checkpoint (random weights in NVIDIA's layout; no spine or CT pretraining exists for the tiny
   backbone) loaded into every variant, so all four start from the same encoder (the variant modules start as
   identity); the real `SwinSpineTrainer` (CE + Dice, lambda 1), schedule shortened on the instance, fold 0;
4. stock `nnUNetv2_predict` on the held-out cases, `nnunet-swin evaluate` (per-class IoU / Dice / Acc, mIoU, mDice,
   mAcc) and `nnunet-swin compare` (Wilcoxon + Bonferroni on the per-case means);
5. boundaries: for the model with adaptive attention, how the learned key scores re-weight attention on the
   held-out cases: the attention mass that boundary key tokens (a label change inside the token's patch) and
   interior key tokens receive with and without the scores, in the first (unshifted) block of every stage.

Writes results.json, summary.md, comparison/ and boundary_reweighting.png into --output; the recorded run is in
experiments/results/spine_ablation/.
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

from nnunet_swin.datasets.synthetic_spine import SpineSpec, make_spine_dataset
from nnunet_swin.io import save_figure, write_json, write_text
from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint
from nnunet_swin.workflows.workspace import Workspace, nnunet_swin_command, run_logged, tool

TRAINER = "SwinSpineTrainer"
BASE_PLANS = "nnUNetSwinUNETRPlans"
VARIANTS = {"plain": {}, "fusion": {"multiscale_fusion": True}, "adaptive": {"adaptive_attention": True},
            "both": {"multiscale_fusion": True, "adaptive_attention": True}}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="spine_ablation_output", help="workspace folder")
    p.add_argument("--dataset_id", type=int, default=621)
    p.add_argument("--num_train", type=int, default=12)
    p.add_argument("--num_test", type=int, default=8)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--iterations", type=int, default=12, help="training iterations per epoch (batch 2)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def prepare(ws: Workspace, a, env, log) -> Path:
    if not list(ws.raw.glob(f"Dataset{a.dataset_id:03d}_*")):
        make_spine_dataset(ws.raw, a.dataset_id, spec=SpineSpec(num_train=a.num_train, num_test=a.num_test,
                                                                 fov_mm=64.0, seed=a.seed), progress=False)
    pre = list(ws.preprocessed.glob(f"Dataset{a.dataset_id:03d}_*"))
    if not pre or not (pre[0] / f"{BASE_PLANS}.json").is_file():
        run_logged(nnunet_swin_command("plan_and_preprocess", "-d", str(a.dataset_id), "-pl", "SwinUNETRPlanner",
                                       "-backbone", "swin_unetr_tiny", "-inplane_patch", "64", "64", "-cubic_size",
                                       "64", "-c", "3d_fullres", "-npfp", "2", "-np", "2", "--quiet"), env, log)
    pre = ws.dataset_folder("preprocessed", a.dataset_id)
    base = json.loads((pre / f"{BASE_PLANS}.json").read_text())
    for name, switches in VARIANTS.items():
        plans = json.loads(json.dumps(base))
        plans["plans_name"] = f"{BASE_PLANS}_{name}"
        for cfg in plans["configurations"].values():
            if "architecture" in cfg:
                cfg["architecture"]["arch_kwargs"].update(switches)
        write_json(pre / f"{plans['plans_name']}.json", plans, indent=4)
    arch = base["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    write_standin_checkpoint(arch, ws.weights / f"{arch['backbone']}.pth", seed=a.seed)
    return pre


def train(a, plans: str) -> Path:
    """SwinSpineTrainer found by name the way nnUNetv2_train finds it, schedule shortened on the instance."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    trainer = get_trainer_from_args(str(a.dataset_id), "3d_fullres", 0, TRAINER, plans, device=torch.device("cpu"))
    trainer.num_epochs, trainer.warmup_epochs = a.epochs, a.warmup
    trainer.recipe_iterations_per_epoch, trainer.recipe_val_iterations_per_epoch = a.iterations, 2
    trainer.save_every = 10 ** 6
    trainer.run_training()
    return Path(trainer.output_folder)


def boundary_reweighting(model_folder: Path, images: Path, labels: Path) -> pd.DataFrame:
    """Per held-out case and stage: the attention mass boundary and interior key tokens receive, with the adaptive
    key scores and with them zeroed (first, unshifted block of each stage; mass = mean over queries of the summed
    post-softmax weight, per key token)."""
    import torch
    import torch.nn.functional as F

    from nnunet_swin.analysis.model_loading import load_model_folder, preprocess_case
    from nnunet_swin.raw_dataset.naming import list_cases
    from nnunet_swin.networks import windows as win

    model = load_model_folder(model_folder, 0)
    net = model.network.eval()
    patch = model.patch_size
    rows = []
    for case, files in list_cases(images, ".nii.gz", 1).items():
        data, seg, _ = preprocess_case(model, files, labels / f"{case}.nii.gz")
        z, y, x = (min(s, p) for s, p in zip(data.shape[1:], patch))
        x0 = torch.zeros(1, 1, *patch)
        x0[0, :, :z, :y, :x] = torch.from_numpy(data[:, :z, :y, :x])
        lab = torch.zeros(1, 1, *patch)
        lab[0, :, :z, :y, :x] = torch.from_numpy(np.asarray(seg[:, :z, :y, :x], dtype=np.float32))
        lab = lab.permute(0, 1, 4, 3, 2)  # the encoder's (X, Y, Z) frame
        masses = {}
        for mode in ("with scores", "scores zeroed"):
            collected = {}

            def probe(event, collected=collected):
                if event.block == 0:
                    collected[event.stage] = (event.attn.float().mean(dim=(1, 2)), event.window)  # (B*nW, N)

            saved = {}
            if mode == "scores zeroed":
                for name, module in net.named_modules():
                    if getattr(module, "key_score", None) is not None:
                        saved[name] = module.key_score
                        module.key_score = None
            with torch.no_grad(), net.encoder.attention_probe(probe):
                net(x0.permute(0, 1, 2, 3, 4))
            for name, module in net.named_modules():
                if name in saved:
                    module.key_score = saved[name]
            masses[mode] = collected
        for stage, (mass, window) in masses["with scores"].items():
            stride = 2 ** (stage + 1)
            hi = F.max_pool3d(lab, stride, stride)
            lo = -F.max_pool3d(-lab, stride, stride)
            boundary = (hi != lo).float()[0, 0]                       # a label change inside the token's patch
            padded = [((s + w - 1) // w) * w for s, w in zip(boundary.shape, window)]
            grid = F.pad(boundary, (0, padded[2] - boundary.shape[2], 0, padded[1] - boundary.shape[1],
                                    0, padded[0] - boundary.shape[0]), value=-1.0)
            kinds = win.partition(grid[None, ..., None], tuple(window))[..., 0]  # (nW, N): 1 boundary, 0, -1 pad
            for mode, m in masses.items():
                stage_mass = m[stage][0]
                rows.append({"case_id": case, "stage": stage, "mode": mode,
                             "boundary_mass": float(stage_mass[kinds == 1].mean()),
                             "interior_mass": float(stage_mass[kinds == 0].mean()),
                             "boundary_share": float((kinds == 1).float().mean())})
    return pd.DataFrame(rows)


def plot_boundaries(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = table.groupby(["stage", "mode"])[["boundary_mass", "interior_mass"]].mean().reset_index()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    stages = sorted(summary["stage"].unique())
    for j, mode in enumerate(("scores zeroed", "with scores")):
        rows = summary[summary["mode"] == mode].set_index("stage").loc[stages]
        ratio = rows["boundary_mass"] / rows["interior_mass"]
        ax.bar(np.arange(len(stages)) + (j - 0.5) * 0.38, ratio, 0.38, label=mode)
    ax.axhline(1.0, color="grey", ls=":")
    ax.set_xticks(range(len(stages)), [f"stage {s}" for s in stages])
    ax.set_ylabel("attention per boundary key / per interior key")
    ax.set_title("adaptive attention: re-weighting toward boundary tokens (held-out cases)")
    ax.legend()
    fig.tight_layout()
    save_figure(path, fig, dpi=110)


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    ws = Workspace(Path(a.output).resolve()).create()
    env = ws.environment(num_processes=2, da_processes=1)
    os.environ.update(env)  # nnU-Net reads its variables when used, so the in-process trainer sees the workspace
    log = ws.logs / "spine_ablation.log"
    t0 = time.time()
    prepare(ws, a, env, log)
    raw = ws.dataset_folder("raw", a.dataset_id)
    seconds, folders = {}, {}
    for name in VARIANTS:
        plans = f"{BASE_PLANS}_{name}"
        start = time.time()
        model_folder = train(a, plans).parent
        seconds[f"train_{name}"] = round(time.time() - start, 1)
        pred = ws.root / "predictions" / name
        run_logged([tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(pred), "-d", str(a.dataset_id),
                    "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-p", plans, "-device", "cpu", "-npp", "1",
                    "-nps", "1"], env, log)
        run_logged(nnunet_swin_command("evaluate", str(raw / "labelsTs"), str(pred), "-o",
                                       str(ws.root / "evaluation" / name), "-np", "2", "--quiet"), env, log)
        folders[name] = (pred, model_folder)
        print(f"{name}: trained in {seconds[f'train_{name}'] / 60:.1f} min", flush=True)
    run_logged(nnunet_swin_command("compare", str(raw / "labelsTs"), *(str(p) for p, _ in folders.values()),
                                   "--names", *folders, "-o", str(ws.root / "comparison"), "-np", "2",
                                   "--quiet", "--no-figures"), env, log)
    means = {}
    for name in VARIANTS:
        s = json.loads((ws.root / "evaluation" / name / "summary_extended.json").read_text())["multiclass"]
        means[name] = {k: v["mean"] for k, v in s["means_over_cases"].items()}
    boundaries = boundary_reweighting(folders["both"][1], raw / "imagesTs", raw / "labelsTs")
    plot_boundaries(boundaries, ws.root / "boundary_reweighting.png")
    seconds["total"] = round(time.time() - t0, 1)
    mc = pd.read_csv(ws.root / "comparison" / "comparison_multiclass.csv")
    tests = mc[(mc["kind"] == "test") & (mc["group"] == "all")]
    results = {"trainer": TRAINER, "backbone": "swin_unetr_tiny (embed 12, depths 1-1-1-1) and its variants",
               "init": "one stand-in checkpoint with random weights in NVIDIA's layout for every variant",
               "epochs": a.epochs, "iterations_per_epoch": a.iterations, "num_train": a.num_train,
               "num_test": a.num_test, "means_over_cases": means, "seconds": seconds,
               "paired_tests": tests[["score", "model_a", "model_b", "n", "median_difference", "p",
                                      "p_bonferroni"]].to_dict(orient="records"),
               "boundary_reweighting": boundaries.groupby(["stage", "mode"])[["boundary_mass", "interior_mass"]]
               .mean().reset_index().to_dict(orient="records")}
    write_json(ws.root / "results.json", results)
    lines = ["# Spine ablation (synthetic CT-like spine, CPU, reduced backbone)", "",
             f"{a.num_train} training / {a.num_test} held-out cases; {a.epochs} epochs x {a.iterations} iterations; "
             f"same random stand-in encoder for every variant; {seconds['total'] / 60:.0f} min in all.", "",
             "| variant | mIoU | mDice | mAcc | training time (min) |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {m['mIoU']:.3f} | {m['mDice']:.3f} | {m['mAcc']:.3f} | {seconds[f'train_{n}'] / 60:.1f} |"
              for n, m in means.items()]
    lines += ["", "Paired Wilcoxon over held-out cases, Bonferroni over the six pairs (p):", "",
              "| score | pair | p (Bonferroni) |", "|---|---|---|"]
    lines += [f"| {r['score']} | {r['model_b']} vs {r['model_a']} | {r['p_bonferroni']:.3f} |"
              for r in results["paired_tests"]]
    write_text(ws.root / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
