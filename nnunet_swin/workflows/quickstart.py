"""`nnunet-swin demo`: the study engine's ``quickstart`` preset, on CPU, in minutes.

One arm (ACT, fold 0) of ``nnunet-swin study`` on its own synthetic dataset: ``nnunet-swin plan_and_preprocess``,
the encoder's pretraining, stock ``nnUNetv2_train`` / ``nnUNetv2_predict``, ``nnunet-swin evaluate``, and the study
report (``OUTPUT/report.md`` + ``report.html``), which opens with what this run reduced (``study_report_demo``).
What is reduced, and why, is stated on screen and in the report:

- backbone ``smit_tiny`` (embed 12, one Swin block per stage) instead of the paper's SMIT, so CPU training fits;
- an encoder pretrained here, in minutes: ``nnunet-swin pretrain --method smit`` on a synthetic CT-like corpus
  (``demo_encoder``; no CT-pretrained weights can be downloaded here, and none exist for the reduced backbone);
- ``SwinACTTrainer_quick``: the ACT recipe for 30 epochs x 25 iterations instead of 500 x 250;
- a 64 mm field of view for the synthetic scans (smaller volumes).

As the paper fine-tunes, the MRI is scaled to [0, 1] (``-normalization rescale01``), the range the CT encoder saw in
its pretraining. This module holds only what the demo adds to the study: its options, their check before any work,
the output folder's safety marker, and the lines on screen.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.io import write_text

PRESET = "quickstart"


@dataclass
class QuickstartOptions:
    """The demo's options; the command's flags, defaults and help come from these fields (``from_dataclass``)."""

    output: Path = field(default=Path("nnunet_swin_demo"), metadata={
        "flags": ("-o", "--output"), "type": Path, "help": "output folder (report, logs, workspace)"})
    dataset_id: int = 501
    num_train: int = field(default=16, metadata={"help": "synthetic training cases (at least 2)"})
    num_test: int = field(default=6, metadata={"help": "synthetic test cases (at least 1)"})
    fov_mm: float = field(default=64.0, metadata={"help": "in-plane field of view of the scans in mm"})
    trainer: str = field(default="SwinACTTrainer_quick", metadata={
        "help": "trainer class of the ACT or Scratch recipe (e.g. SwinACTTrainer_smoke for a seconds-long run)"})
    num_processes: int = 2
    seed: int = 0
    overwrite: bool = field(default=False, metadata={"help": "replace a previous demo in the output folder"})
    progress: bool = True
    pretrain_epochs: int = field(default=20, metadata={"help": "epochs of the encoder's pretraining"})
    pretrain_iterations: int = field(default=20, metadata={"help": "iterations per pretraining epoch"})


def _arm_of(trainer: str) -> tuple[str, str]:
    """(arm, trainer suffix) of a trainer class name, e.g. ``SwinACTTrainer_quick`` -> (``ACT``, ``_quick``)."""
    from nnunet_swin.trainers import __all__ as trainer_names
    from nnunet_swin.workflows.study_arms import PAPER_ARMS

    if trainer not in trainer_names:
        raise UserError(f"unknown trainer {trainer!r}; choose one of {', '.join(trainer_names)}")
    for arm in PAPER_ARMS.values():
        suffix = trainer[len(arm.trainer):]
        if trainer.startswith(arm.trainer) and (suffix == "" or suffix.startswith("_")):
            if arm.cubic:
                break
            return arm.name, suffix
    raise UserError(f"--trainer {trainer}: the demo trains the anisotropic 3d_fullres configuration; give a trainer "
                    f"of the ACT or Scratch recipe (e.g. SwinACTTrainer_quick, SwinScratchTrainer_quick)")


def study_settings(o: QuickstartOptions):
    """The study settings of this demo, every value checked first (nothing is made before this returns)."""
    from nnunet_swin.workflows.study import StudySettings, check_settings
    from nnunet_swin.workflows.study_arms import parse_arms

    arm, suffix = _arm_of(o.trainer)
    if not 1 <= o.dataset_id <= 999:
        raise UserError(f"dataset id must be between 1 and 999, got {o.dataset_id}")
    for name, value, least in (("--num-train", o.num_train, 2), ("--num-test", o.num_test, 1),
                               ("-np", o.num_processes, 1), ("--pretrain-epochs", o.pretrain_epochs, 1),
                               ("--pretrain-iterations", o.pretrain_iterations, 1)):
        if value < least:
            raise UserError(f"{name} must be at least {least}, got {value}")
    if not o.fov_mm > 0:
        raise UserError(f"--fov-mm must be positive, got {o.fov_mm}")
    settings = StudySettings(output=Path(o.output), dataset_id=o.dataset_id, backbone="smit_tiny", arms=[arm],
                             folds=[0], preset=PRESET, device="cpu", num_processes=o.num_processes,
                             progress=o.progress, seed=o.seed, demo_num_train=o.num_train, demo_num_test=o.num_test,
                             demo_pretrain_epochs=o.pretrain_epochs, demo_pretrain_iterations=o.pretrain_iterations,
                             demo_fov_mm=o.fov_mm, trainer_suffix=suffix)
    check_settings(settings)
    parse_arms(settings.arms, PRESET)
    return settings


def prepare_output(output: Path, overwrite: bool) -> Path:
    """A new output folder with the demo's marker; a previous demo's folder is replaced only with ``overwrite``, a
    folder the demo did not write never."""
    from nnunet_swin.workflows.study import DEMO_MARKER

    root = Path(output).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file; choose another --output")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise UserError(f"{root} already exists and is not empty; pass --overwrite to replace a previous demo, "
                            f"or choose another --output")
        if not (root / DEMO_MARKER).is_file():
            raise UserError(f"{root} is not a folder written by `nnunet-swin demo` (no {DEMO_MARKER} file); refusing "
                            f"to delete it. Choose another --output")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / DEMO_MARKER, "written by nnunet-swin demo; safe to delete\n")
    return root


def mean_dice(output: Path, arm: str) -> tuple[float, int] | None:
    """Mean Dice over the test cases in the arm's evaluation (``nnunet-swin evaluate``), and the number of cases."""
    import numpy as np
    import pandas as pd

    from nnunet_swin.evaluation.folder_evaluation import PER_CASE_CSV

    table = Path(output) / "evaluation" / arm / PER_CASE_CSV
    if not table.is_file():
        return None
    dice = pd.read_csv(table)["dice"].to_numpy(float)
    return float(np.nanmean(dice)) if len(dice) else float("nan"), len(dice)


def run_quickstart(o: QuickstartOptions):
    """Check every option, prepare the output folder, run the study's quickstart preset; return the study's result."""
    from nnunet_swin.workflows.study import run_study

    settings = study_settings(o)
    root = prepare_output(o.output, o.overwrite)
    say = print if o.progress else (lambda *a, **k: None)
    steps = o.pretrain_epochs * o.pretrain_iterations
    say(f"nnunet-swin demo in {root} (the study engine's {PRESET} preset: arm {settings.arms[0]}, fold 0)\n"
        f"  REDUCED for CPU: backbone smit_tiny (not the paper's SMIT), trainer {o.trainer} (short schedule), "
        f"{o.fov_mm:g} mm synthetic scans, {o.num_train} training + {o.num_test} test cases\n"
        f"  NO CT-PRETRAINED WEIGHTS: the encoder is SMIT-pretrained here for {steps} steps on synthetic CT-like "
        f"volumes (minutes)\n[synthetic dataset] {o.num_train} training + {o.num_test} test cases")
    started = time.perf_counter()
    result = run_study(settings)
    if (dice := mean_dice(root, settings.arms[0])) is not None:
        say(f"mean Dice {dice[0]:.3f} over {dice[1]} test cases (held-out test split)")
    say(f"Demo finished in {(time.perf_counter() - started) / 60:.1f} min.")
    return result
