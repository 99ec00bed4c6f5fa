"""The study report's opening section for the quickstart preset (``nnunet-swin demo``): what this run reduced or
stood in, the held-out scores case by case, the training curve, the pretrained encoder's load report, and the
exact commands that reproduce it by hand. Read from the files the steps wrote and from ``study.json``'s attempts;
nothing is re-run."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _command(text: str) -> str:
    """A recorded command as a user types it: ``nnunet-swin ...`` for our module, the bare name of a console script."""
    words = shlex.split(text)
    if len(words) > 2 and words[0] == sys.executable and words[1] == "-m":
        words = ["nnunet-swin"] + words[3:]
    elif words and "/" in words[0]:
        words[0] = Path(words[0]).name
    return shlex.join(words)


def _recorded(state, name: str) -> str | None:
    record = state.steps.get(name)
    done = [a for a in (record.attempts if record else []) if a.outcome == "done" and " " in a.command]
    return _command(done[-1].command) if done else None


def reproduce_commands(study) -> list[str]:
    """The commands of this run, in order, as one would type them (paths as recorded)."""
    from nnunet_swin.workflows.study_context import _demo_pretraining
    from nnunet_swin.workflows.workspace import Workspace

    s, arm = study.settings, study.arms[0]
    weights = Workspace(study.paths.output / "workspace").weights
    pretraining = _demo_pretraining(s)
    lines = [f"nnunet-swin make_demo_dataset -d {study.dataset_id} --num-train {s.demo_num_train} --num-test "
             f"{s.demo_num_test} --fov-mm {s.demo_fov_mm:g} --seed {s.seed}",
             _recorded(study.state, "plan"),
             f"# {pretraining.corpus_cases} synthetic CT-like volumes: nnunet_swin.datasets.synthetic_ct.make_ct_corpus "
             f"(seed {pretraining.seed})",
             "nnunet-swin " + shlex.join(pretraining.arguments(weights / "ct_corpus" / "images",
                                                               pretraining.output(weights))),
             'eval "$(nnunet-swin env)"      # nnUNet_extTrainer: where stock nnU-Net finds our trainers',
             "export " + " ".join(f"{k}={shlex.quote(study.env[k])}" for k in
                                  ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_swin_pretrained")
                                  if study.env.get(k))]
    lines += [_recorded(study.state, n) for n in (f"train {arm.name} fold 0", f"predict {arm.name}",
                                                  f"evaluate {arm.name}")]
    return [line for line in lines if line]


def _per_case(study, arm: str) -> pd.DataFrame | None:
    table = study.paths.output / "evaluation" / arm / "metrics_per_case.csv"
    if not table.is_file():
        return None
    frame = pd.read_csv(table)
    truth = study.raw_dataset / "subtypes_truth.csv"
    if truth.is_file() and "subtype" not in frame:
        frame = frame.merge(pd.read_csv(truth)[["case_id", "subtype"]], on="case_id", how="left")
    if "detected" in frame:
        frame["detected"] = [("yes" if v else "no") if v == v else "n/a" for v in frame["detected"]]
    shown = [c for c in ("case_id", "subtype", "dice", "surface_dice", "volume_ratio", "detected") if c in frame]
    return frame[shown].sort_values("dice", ascending=False).reset_index(drop=True)


def quickstart_section(page, study) -> None:
    """Add the quickstart's sections to the study report's ``page`` (``study_report._Page``)."""
    from nnunet_swin.workflows.training_log import training_curve

    s, arm = study.settings, study.arms[0]
    fold_dir = study.model_folder(arm) / "fold_0"
    config = study.plans()["configurations"][arm.configuration] if study.plans_file.is_file() else {}
    backbone = config.get("architecture", {}).get("arch_kwargs", {})
    checkpoint = fold_dir / "checkpoint_final.pth"
    curve = training_curve(checkpoint) if checkpoint.is_file() else None
    page.heading("What is reduced or stood in (read this first)")
    page.text(f"`nnunet-swin demo` is this study engine's `quickstart` preset: one arm ({arm.name}, "
              f"`{study.trainer(arm)}`, fold 0) fine-tuned and evaluated end to end on CPU with stock nnU-Net "
              f"commands. It shows the machinery working, not CT-to-MRI transfer; the analyses of several arms "
              f"(comparison, subtypes, ADI, CKA) are skipped here and run in `nnunet-swin study --preset demo`; "
              f"the findings table below therefore names, row by row, the arms this run did not train.")
    page.bullets([
        f"**Backbone: `{backbone.get('backbone', s.backbone)}`**, a reduced configuration (embed dim "
        f"{backbone.get('embed_dim', '?')}, depths {backbone.get('depths', '?')}, heads "
        f"{backbone.get('num_heads', '?')}) so that CPU training fits in minutes. The paper's SMIT is embed 48, "
        f"depths (2, 2, 12, 2).",
        "**No CT-pretrained weights.** None can be downloaded here and none exist for the reduced backbone. The "
        "encoder is " + (study.state.pretrained_note or "encoder not made (see the steps)").removeprefix("encoder ")
        + " (what it is comes from the "
        "checkpoint's metadata: method, steps, corpus, which encoder was exported and whether the collapse monitor "
        "saw the distillation collapse). Nothing here measures CT-to-MRI transfer.",
        f"**Short schedule:** `{study.trainer(arm)}`: "
        + (f"{len(curve)} epochs" if curve is not None else "not trained") + " (the recipe: 500 epochs x 250 "
        "iterations).",
        f"**Synthetic data:** {s.demo_num_train} training and {s.demo_num_test} test cases, {s.demo_fov_mm:g} mm "
        f"field of view, bright/sharp and dark/diffuse tumour subtypes."])
    page.heading("Held-out test split")
    per_case = _per_case(study, arm.name)
    if per_case is None:
        page.text("No evaluation (see the steps below).")
    else:
        dice = per_case["dice"].to_numpy(float)
        page.text(f"Metrics: surface Dice @2 mm, Dice, volume ratio, detection (`nnunet-swin evaluate`). Mean Dice "
                  f"**{np.nanmean(dice) if len(dice) else float('nan'):.3f}** over {len(per_case)} cases.")
        page.table(per_case)
    page.heading("Training")
    if curve is not None:
        page.text(f"Final epoch: train loss {curve['train_loss'].iloc[-1]:.3f}, validation pseudo-Dice "
                  f"{curve['pseudo_dice'].iloc[-1]:.3f} (EMA {curve['ema_pseudo_dice'].iloc[-1]:.3f}); validation = "
                  f"fold 0 of nnU-Net's 5-fold split, on patches. The curve is under \"Training curves\" below.")
    report = fold_dir / "pretrained_encoder_report.txt"
    page.text("Pretrained-encoder load report:")
    page.preformatted(report.read_text() if report.is_file() else "(no report found)")
    page.heading("Commands to reproduce it by hand")
    page.preformatted("\n".join(reproduce_commands(study)))
