"""The study's table of steps: for each, the stock command it runs, its inputs and outputs, what it needs.

plan -> (the CNN arm: plan CNN, stock nnUNetv2_plan_and_preprocess) -> (demo: pretrain encoder) -> subtypes ->
custom folds -> train <arm> fold <f> (one per arm and fold; done when nnU-Net wrote ``checkpoint_final.pth``) ->
predict <arm> (stock ``nnUNetv2_predict`` on imagesTs; without a test split, the cross-validation predictions
gathered) -> evaluate <arm> -> compare <family>, compare <family> by subtype -> adi -> cka <arm>, cka random-init ->
report.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json
from nnunet_swin.workflows.study_arms import PRESETS, ArmSpec
from nnunet_swin.workflows.study_runner import Journal, Step
from nnunet_swin.workflows.study_splits import case_ids, custom_folds_current, write_custom_folds

if TYPE_CHECKING:
    from nnunet_swin.workflows.study_context import Study


def tool(name: str) -> str:
    from nnunet_swin.workflows.workspace import tool as find
    return find(name)


def ours(*args: str) -> list[str]:
    return [sys.executable, "-m", "nnunet_swin", *args]


def fold_state(model_folder: Path, fold: int) -> str:
    """``done`` (checkpoint_final.pth), ``interrupted`` (only checkpoint_latest.pth) or ``new``."""
    fold_dir = model_folder / f"fold_{fold}"
    if (fold_dir / "checkpoint_final.pth").is_file():
        return "done"
    if (fold_dir / "checkpoint_latest.pth").is_file():
        return "interrupted"
    return "new"


def arm_done(study: Study, arm: ArmSpec) -> bool:
    folds = study.folds(arm)
    return bool(folds) and all(fold_state(study.model_folder(arm), f) == "done" for f in folds)


def train_command(study: Study, arm: ArmSpec, fold: int) -> list[str] | None:
    """The stock ``nnUNetv2_train`` call for one fold of an arm in its current state (None when it is done)."""
    state = fold_state(study.model_folder(arm), fold)
    if state == "done":
        return None
    cmd = [tool("nnUNetv2_train"), str(study.dataset_id), arm.configuration, str(fold), "-tr", study.trainer(arm),
           "-p", study.arm_plans_name(arm), "-device", study.device]
    return cmd + (["--c"] if state == "interrupted" else [])


class TrainingEcho:
    """One console line per finished epoch, from the trainers' progress lines (``trainers.progress``)."""

    def __init__(self, study: Study, label: str):
        self.study, self.label = study, label

    def __call__(self, line: str) -> None:
        from nnunet_swin.trainers.progress import parse_progress_line

        record = parse_progress_line(line)
        if record is None:
            return
        if record["event"] == "start":
            self.study.say(f"  {self.label}: training from epoch {record['epoch']} of {record['num_epochs']}")
        elif record["event"] == "epoch":
            loss, dice = record.get("train_loss"), record.get("pseudo_dice")
            self.study.say(f"  {self.label}: epoch {record['epoch'] + 1}/{record['num_epochs']} loss "
                           f"{'n/a' if loss is None else f'{loss:.3f}'} pseudo-Dice "
                           f"{'n/a' if dice is None else f'{dice:.3f}'}")


def analysis_images(study: Study, minimum: int = 1) -> Path:
    """imagesTs when it holds at least ``minimum`` cases, else imagesTr."""
    ts = study.raw_dataset / "imagesTs"
    if ts.is_dir() and len(case_ids(ts, study.file_ending(), True)) >= minimum:
        return ts
    return study.raw_dataset / "imagesTr"


def pretrained_checkpoint(study: Study) -> Path | None:
    from nnunet_swin.networks.weights import PRETRAINED_ENV, resolve_pretrained_checkpoint

    if not study.env.get(PRETRAINED_ENV, "").strip():
        return None
    plans = study.plans()
    backbone = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["backbone"]
    try:
        return resolve_pretrained_checkpoint(backbone, study.env[PRETRAINED_ENV])
    except UserError:
        return None


def _files(folder: Path, ending: str) -> list[Path]:
    return sorted(folder.glob(f"*{ending}")) if folder.is_dir() else []


def training_steps(study: Study) -> list[Step]:
    """One step per arm and fold (a subtype arm: one step on its custom fold, known once the folds are written)."""
    steps = []
    for arm in study.arms:
        for fold in ([None] if arm.subtype else study.settings.folds):
            def folds(arm=arm, fold=fold) -> list[int]:
                return study.folds(arm) if fold is None else [fold]

            name = f"train {arm.name}" + ("" if fold is None else f" fold {fold}")
            needs = ("plan",) + ((f"plan {arm.name}",) if arm.planner else ()) + \
                (("custom folds",) if arm.subtype else ()) + \
                (("pretrain encoder",) if arm.pretrained and PRESETS[study.settings.preset].synthetic else ())
            steps.append(Step(
                name, "train", study.paths.logs / f"train_{arm.name}" f"{'' if fold is None else f'_fold{fold}'}.log",
                outputs=lambda arm=arm, folds=folds: [study.model_folder(arm) / f"fold_{f}" / "checkpoint_final.pth"
                                                      for f in folds()],
                done=lambda arm=arm, folds=folds: bool(folds()) and all(
                    fold_state(study.model_folder(arm), f) == "done" for f in folds()),
                done_because="checkpoint_final.pth present",
                command=lambda arm=arm, folds=folds: train_command(study, arm, folds()[0]),
                skip=lambda arm=arm, folds=folds: None if folds() else f"no custom fold for subtype {arm.subtype}",
                needs=needs, resources="gpu", resume_flag="--c",
                on_line=TrainingEcho(study, name.removeprefix("train "))))
    return steps


def _predict_command(study: Study, arm: ArmSpec) -> list[str]:
    from nnunet_swin.raw_dataset.checks import check_image_folder
    from nnunet_swin.raw_dataset.folders import read_dataset_json

    # stock nnUNetv2_predict dies on one bad file without naming it: name it first
    check_image_folder(study.raw_dataset / "imagesTs", read_dataset_json(study.raw_dataset))
    out = study.prediction_folder(arm)
    cmd = [tool("nnUNetv2_predict"), "-i", str(study.raw_dataset / "imagesTs"), "-o", str(out), "-d",
           str(study.dataset_id), "-c", arm.configuration, "-f", *map(str, study.folds(arm)), "-tr",
           study.trainer(arm), "-p", study.arm_plans_name(arm), "-device", study.device, "-npp", "1", "-nps", "1"]
    checkpoints = [study.model_folder(arm) / f"fold_{f}" / "checkpoint_final.pth" for f in study.folds(arm)]
    newest = max(p.stat().st_mtime for p in checkpoints)
    if any(p.stat().st_mtime > newest for p in _files(out, study.file_ending())):
        cmd.append("--continue_prediction")      # an interrupted prediction of the same model: keep its cases
    return cmd


def gather_cross_validation(study: Study, arm: ArmSpec) -> None:
    """The arm's cross-validation predictions of every study fold, linked into one folder."""
    out = study.prediction_folder(arm)
    out.mkdir(parents=True, exist_ok=True)
    for fold in study.folds(arm):
        for f in _files(study.model_folder(arm) / f"fold_{fold}" / "validation", study.file_ending()):
            if not (out / f.name).exists():
                os.symlink(f, out / f.name)


def gather_cv_reference(study: Study) -> None:
    """Links to the labelsTr files of the cases every arm with predictions predicted in cross-validation."""
    ending = study.file_ending()
    folders = [f for a in study.arms if (f := study.prediction_folder(a)).is_dir() and _files(f, ending)]
    if not folders:
        raise UserError(f"{study.dataset_name} has no test split (imagesTs + labelsTs) and no arm has finished "
                        f"cross-validation predictions (fold_X/validation); train the arms first (run without "
                        f"--report-only) or add a test split")
    common = set.intersection(*[{p.name for p in _files(f, ending)} for f in folders])
    out = study.reference_folder()
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(common):
        if not (out / name).exists():
            os.symlink(study.raw_dataset / "labelsTr" / name, out / name)
    for stale in _files(out, ending):
        if stale.name not in common:
            stale.unlink()


def prediction_steps(study: Study, train_names: dict[str, list[str]]) -> list[Step]:
    """Per arm: stock ``nnUNetv2_predict`` on imagesTs, or (no test split) the cross-validation predictions."""
    ending, steps = study.file_ending(), []
    test = study.test_split()
    for arm in study.arms:
        def checkpoints(arm=arm) -> list[Path]:
            return [study.model_folder(arm) / f"fold_{f}" / "checkpoint_final.pth" for f in study.folds(arm)]

        def not_trained(arm=arm) -> str | None:
            return None if arm_done(study, arm) else f"arm {arm.name} has not finished training"

        if test:
            cases = case_ids(study.raw_dataset / "labelsTs", ending, False)
            steps.append(Step(
                f"predict {arm.name}", "predict", study.paths.logs / f"predict_{arm.name}.log",
                outputs=lambda arm=arm, cases=cases: [study.prediction_folder(arm) / f"{c}{ending}" for c in cases],
                inputs=checkpoints, command=lambda arm=arm: _predict_command(study, arm),
                needs=tuple(train_names[arm.name]), skip=not_trained, resources=study.resources))
        else:
            def validation(arm=arm) -> list[Path]:
                return [f for fold in study.folds(arm)
                        for f in _files(study.model_folder(arm) / f"fold_{fold}" / "validation", ending)]
            steps.append(Step(
                f"predict {arm.name}", "predict", study.paths.logs / f"predict_{arm.name}.log",
                outputs=lambda arm=arm, validation=validation: [study.prediction_folder(arm) / f.name
                                                                for f in validation()],
                inputs=validation, function=lambda arm=arm: gather_cross_validation(study, arm),
                done_because="cross-validation predictions linked",
                needs=tuple(train_names[arm.name]), skip=not_trained))
    if not test:
        steps.append(Step(
            "cv reference", "predict", study.paths.logs / "cv_reference.log",
            outputs=lambda: _files(study.reference_folder(), ending) or [study.reference_folder() / "none"],
            inputs=lambda: [f for a in study.arms for f in _files(study.prediction_folder(a), ending)],
            function=lambda: gather_cv_reference(study), needs=tuple(f"predict {a.name}" for a in study.arms),
            blocking=False))
    return steps


def plan_step(study: Study) -> Step:
    s = study.settings

    def command() -> list[str]:
        cmd = ours("plan_and_preprocess", "-d", str(study.dataset_id), "-pl", s.planner, "-npfp",
                   str(s.num_processes), "-np", str(s.num_processes), "--quiet")
        cmd += ["-overwrite_plans_name", s.plans] if s.plans else []
        cmd += ["-backbone", s.backbone] if s.backbone else []
        return cmd + list(s.plan_args)

    return Step("plan", "plan", study.paths.logs / "plan.log", outputs=lambda: [study.plans_file],
                done=study.plans_file.is_file, done_because=f"{study.plans_file.name} exists", command=command)


def stock_plan_step(study: Study, arm: ArmSpec) -> Step:
    """An arm stock nnU-Net plans itself (the CNN): ``nnUNetv2_plan_and_preprocess -pl <planner> -c <configuration>``
    under the planner's own plans identifier, after our plan step (they share the dataset fingerprint). Done when the
    plans exist and every training case is preprocessed."""
    s = study.settings
    plans_file = study.arm_plans_file(arm)

    def preprocessed() -> bool:
        if not plans_file.is_file():
            return False
        config = read_json(plans_file, "plans file")["configurations"].get(arm.configuration, {})
        data_id = config.get("data_identifier", f"{study.arm_plans_name(arm)}_{arm.configuration}")
        done = {p.name[:-len(".pkl")] for p in (study.preprocessed_dataset / data_id).glob("*.pkl")}
        return set(case_ids(study.raw_dataset / "imagesTr", study.file_ending(), True)) <= done

    def command() -> list[str]:
        return [tool("nnUNetv2_plan_and_preprocess"), "-d", str(study.dataset_id), "-pl", arm.planner, "-c",
                arm.configuration, "-npfp", str(s.num_processes), "-np", str(s.num_processes), *s.cnn_plan_args]

    # nnU-Net 2.8.1's ResEnc planners call torch.set_num_threads(nnUNet_n_proc_DA), which refuses 0
    env = {"nnUNet_n_proc_DA": "1"} if study.env.get("nnUNet_n_proc_DA", "").strip() == "0" else {}
    return Step(f"plan {arm.name}", "plan", study.paths.logs / f"plan_{arm.name}.log", outputs=lambda: [plans_file],
                done=preprocessed, done_because=f"{plans_file.name} exists and every training case is preprocessed",
                command=command, needs=("plan",), env=env)


def pretrain_step(study: Study) -> Step:
    """The demo preset's encoder: SMIT-pretrained by ``nnunet-swin pretrain`` in minutes (``demo_encoder``)."""
    from nnunet_swin.workflows.demo_encoder import pretrain_demo_encoder
    from nnunet_swin.workflows.study_context import _demo_pretraining
    from nnunet_swin.workflows.workspace import Workspace

    weights = Workspace(study.paths.output / "workspace").weights
    checkpoint = _demo_pretraining(study.settings).checkpoint(weights)

    def run() -> None:
        study.say("[pretrain encoder] nnunet-swin pretrain --method smit on synthetic CT-like volumes")
        encoder = pretrain_demo_encoder(weights, study.env, study.paths.logs / "pretrain.log",
                                        _demo_pretraining(study.settings))
        study.state.pretrained_note = (f"encoder {encoder.description}: `{encoder.checkpoint}` (made by "
                                       f"`{encoder.command}`)")

    return Step("pretrain encoder", "pretrain", study.paths.logs / "pretrain.log", outputs=lambda: [checkpoint],
                done=lambda: checkpoint.is_file() and study.state.pretrained_note is not None,
                done_because=f"{checkpoint.name} exists", function=run)


def custom_folds_step(study: Study) -> Step:
    splits = study.preprocessed_dataset / "splits_final.json"
    return Step("custom folds", "splits", study.paths.logs / "custom_folds.log", outputs=lambda: [splits],
                done=lambda: custom_folds_current(study), done_because="every subtype arm's fold is in "
                "splits_final.json", function=lambda: write_custom_folds(study), needs=("plan", "subtypes"))


def arm_cost(study: Study, arm: ArmSpec) -> dict:
    """What a finished arm cost: its patch and tokens per patch, the median and total epoch time over its folds
    (nnU-Net's own epoch timestamps in ``checkpoint_final.pth``) and, once it ran, the prediction's wall time."""
    import numpy as np

    from nnunet_swin.workflows.training_log import training_curve

    config = read_json(study.arm_plans_file(arm), "plans file")["configurations"][arm.configuration]
    patch = [int(v) for v in config["patch_size"]]
    embed = config["architecture"]["arch_kwargs"].get("patch_size", 2) if arm.swin else None
    seconds = []
    for fold in study.folds(arm):
        curve = training_curve(study.model_folder(arm) / f"fold_{fold}" / "checkpoint_final.pth")
        seconds += [float(v) for v in curve.get("epoch_seconds", [])]
    embed = None if embed is None else [int(embed)] * 3 if isinstance(embed, (int, float)) else [int(v) for v in embed]
    cost = {"patch_size": patch,       # a CNN has no tokens
            "tokens_per_patch": None if embed is None else int(np.prod([p // e for p, e in zip(patch, embed)])),
            "epochs": len(seconds), "median_epoch_seconds": float(np.median(seconds)) if seconds else None,
            "training_seconds": float(np.sum(seconds)) if seconds else None}
    predict = study.state.steps.get(f"predict {arm.name}")
    done = [a for a in (predict.attempts if predict else []) if a.outcome == "done" and a.seconds is not None]
    if done and predict.kind == "predict" and study.test_split():
        cost["prediction_seconds"] = done[-1].seconds
    return cost


def _cost_or_none(study: Study, arm: ArmSpec) -> dict | None:
    try:
        return arm_cost(study, arm)
    except (OSError, EOFError, RuntimeError, KeyError) as e:     # a checkpoint nnU-Net did not write
        study.say(f"  {arm.name}: no cost ({type(e).__name__}: {e})")
        return None


def arm_records(study: Study, journal: Journal) -> None:
    """Each arm summed over its training steps, into ``study.json`` (what the report's arm table reads)."""
    from nnunet_swin.workflows.study_state import ArmRecord

    for arm in study.arms:
        names = [n for n in study.state.steps if n == f"train {arm.name}" or n.startswith(f"train {arm.name} fold ")]
        records = [study.state.steps[n] for n in names]
        failed = next((r for r in records if r.status in ("failed", "blocked")), None)
        status = "done" if arm_done(study, arm) else "failed" if failed else \
            "queued" if any(r.status == "queued" for r in records) else "missing"
        last = failed or (records[-1] if records else None)
        tail = next((a.log_tail for a in reversed(failed.attempts) if a.log_tail), None) if failed else None
        predict = study.state.steps.get(f"predict {arm.name}")
        study.state.arms[arm.name] = ArmRecord(
            status, study.trainer(arm), arm.configuration, study.folds(arm), str(study.model_folder(arm)),
            last.log if last and last.log else journal.rel(study.paths.logs / f"train_{arm.name}.log"),
            subtype=arm.subtype, reason=failed.reason if failed else None, log_tail=tail,
            cost=_cost_or_none(study, arm) if status == "done" else None,
            prediction={"status": predict.status, "log": predict.log} if predict else None)
    study.save()
