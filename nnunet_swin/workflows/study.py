"""`nnunet-swin study`: the paper's whole study on one nnU-Net dataset, as one resumable command.

The study is a table of steps (``study_steps``, ``study_analysis``) walked by one runner (``study_runner``) on an
executor (``study_executors``: this machine, or SLURM through submitit). Every step is a stock command in its own
process with its output in ``OUTPUT/logs/<step>.log``: ``nnunet-swin plan_and_preprocess`` (when the plans are
missing), ``nnunet-swin subtypes``, the subtype arms' custom folds (``study_splits``), stock ``nnUNetv2_train`` per
arm and fold, stock ``nnUNetv2_predict``, ``nnunet-swin evaluate`` / ``compare`` / ``adi`` / ``cka``, then
``report.md`` + ``report.html`` (``study_report``).

What is finished is read from the files, never from our bookkeeping: a fold is done when nnU-Net wrote
``fold_X/checkpoint_final.pth`` (``checkpoint_latest.pth`` alone: resumed with ``--c``); an analysis step is done
when its outputs are newer than its inputs. ``study.json`` (``study_state``) records every attempt (executor, job
id, log, outcome) and why a step did not run. Nothing finished is deleted or overwritten: a folder holding another
study, an arm whose model folder was trained on other plans, and similar conflicts stop with a ``UserError`` first.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from nnunet_swin.device import check_device, default_device
from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json
from nnunet_swin.workflows.study_arms import (DEFAULT_PLANS, DEMO_CNN_PLAN_ARGS, DEMO_PLAN_ARGS, DEMO_SYNTHETIC,
                                              PRESETS, QUICKSTART_PLAN_ARGS, parse_arms)
from nnunet_swin.workflows.study_context import (Study, StudyPaths, StudySettings, _dataset_folder,
                                                 _demo_pretraining, _nnunet_base)
from nnunet_swin.cluster import check_slurm
from nnunet_swin.workflows.study_executors import LocalExecutor, SlurmExecutor
from nnunet_swin.workflows.study_runner import Journal, Step, run_steps
from nnunet_swin.workflows.study_state import STATE_FILE, StudyState, read_state

DEMO_MARKER = ".nnunet_swin_demo"        # written by `nnunet-swin demo` into its output folder (safe to replace)

# ---------------------------------------------------------------------------------------------------------- resolve

def _prepare_demo(settings: StudySettings, output: Path) -> tuple[dict[str, str], int]:
    """A synthetic preset's own workspace inside the output folder: the synthetic dataset, and the path of the
    encoder the ``pretrain encoder`` step makes (``demo_encoder``) before the arms train. The demo preset's dataset
    (``DEMO_SYNTHETIC``: ``demo_num_train`` training cases, a quarter dark, and ``demo_num_test`` test cases
    stratified by subtype x pf) has its one fold (every training case, ``study_splits.write_demo_fold``); the
    quickstart keeps the synthetic default cohort at ``demo_fov_mm`` and nnU-Net's own 5-fold split."""
    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.study_splits import write_demo_fold
    from nnunet_swin.workflows.workspace import Workspace

    settings.backbone = settings.backbone or "smit_tiny"
    quick = settings.preset == "quickstart"
    settings.plan_args = settings.plan_args or list(QUICKSTART_PLAN_ARGS if quick else DEMO_PLAN_ARGS)
    settings.cnn_plan_args = settings.cnn_plan_args or ([] if quick else list(DEMO_CNN_PLAN_ARGS))
    ws = Workspace(output / "workspace").create()
    env = ws.environment(num_processes=settings.num_processes, da_processes=1)
    env["nnUNet_swin_pretrained"] = str(_demo_pretraining(settings).checkpoint(ws.weights))
    dataset_id = settings.dataset_id or 501
    if not any(ws.raw.glob(f"Dataset{dataset_id:03d}_*")):
        spec = SyntheticSpec(num_train=settings.demo_num_train, num_test=settings.demo_num_test,
                             seed=settings.seed, **({"fov_mm": settings.demo_fov_mm} if quick else DEMO_SYNTHETIC))
        make_demo_dataset(ws.raw, dataset_id, spec=spec, progress=settings.progress)
    if not quick:
        raw = next(ws.raw.glob(f"Dataset{dataset_id:03d}_*"))
        write_demo_fold(raw, ws.preprocessed / raw.name)   # one fold: every training case (``study_splits``)
    return env, dataset_id


def _check_output(output: Path, state: StudyState | None, dataset_name: str, plans_name: str) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"output folder {output} is a file; give a folder (-o)")
    if state is None:
        if output.is_dir() and any(p.name not in ("workspace", DEMO_MARKER) for p in output.iterdir()):
            raise UserError(f"output folder {output} is not empty and holds no {STATE_FILE}; give a new or empty "
                            f"folder (-o), or the folder of an earlier study of {dataset_name}")
        return
    if (state.dataset, state.plans) != (dataset_name, plans_name):
        raise UserError(f"output folder {output} holds another study ({state.dataset}, {state.plans}), not "
                        f"{dataset_name} with {plans_name}; give another folder (-o) for this one")


def check_settings(settings: StudySettings) -> None:
    """Every argument checked before anything is made (the demo's dataset included)."""
    if settings.preset not in PRESETS:
        raise UserError(f"unknown preset {settings.preset!r}; choose one of {', '.join(PRESETS)}")
    if settings.executor not in ("local", "slurm"):
        raise UserError(f"unknown executor {settings.executor!r}; choose local or slurm")
    if settings.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {settings.jobs}")
    if settings.devices is not None:
        if not settings.devices:
            raise UserError("--devices needs at least one device id, e.g. --devices 0 1")
        if settings.executor == "slurm":
            raise UserError("--devices is for --executor local; on SLURM the jobs get their GPUs from "
                            "--slurm-gpus-per-job")
        if default_device() == "cpu":
            raise UserError(f"--devices {' '.join(settings.devices)}: this machine has no CUDA GPU; run on the CPU "
                            f"with --device cpu (or without --devices)")
        for d in settings.devices:
            if not d.isdigit():
                raise UserError(f"--devices {d!r}: give CUDA device ids (0, 1, ...)")
            check_device(f"cuda:{d}", "--devices")
    elif settings.executor == "local" and settings.device != "cpu":
        check_device(settings.device)
    if not settings.slurm.wait and settings.executor != "slurm":
        raise UserError("--no-wait is for --executor slurm (local jobs end with this call)")
    if settings.executor == "slurm" and not (settings.print_commands or settings.report_only):
        check_slurm(settings.slurm)


def _check_pretrained(study: Study) -> None:
    """Pretrained arms need the encoder before anything is planned (the demo makes its own)."""
    from nnunet_swin.workflows.study_steps import pretrained_checkpoint

    pretrained = [a.name for a in study.arms if a.pretrained]
    if not pretrained or PRESETS[study.settings.preset].synthetic or study.settings.report_only:
        return
    value = study.env.get("nnUNet_swin_pretrained", "").strip()
    how = ("export nnUNet_swin_pretrained=/path/to/<backbone>.pth (the checkpoint, or a folder holding it), or run "
           "only the arms without it (--arms Scratch)")
    if not value:
        raise UserError(f"arms {', '.join(pretrained)} start from a pretrained encoder and nnUNet_swin_pretrained "
                        f"is not set; {how}")
    if not Path(value).expanduser().exists():
        raise UserError(f"arms {', '.join(pretrained)}: nnUNet_swin_pretrained={value} does not exist; {how}")
    if study.plans_file.is_file() and pretrained_checkpoint(study) is None:
        backbone = study.plans()["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["backbone"]
        raise UserError(f"arms {', '.join(pretrained)}: nnUNet_swin_pretrained={value} holds no checkpoint for the "
                        f"plans' backbone {backbone}; {how}")


def _check_plans_name(study: Study) -> None:
    """A plans name given with -p must exist, unless planning under it was asked for (--plan)."""
    s = study.settings
    if s.plans is None or s.plan or s.report_only or study.plans_file.is_file():
        return
    there = sorted(p.stem for p in study.preprocessed_dataset.glob("*Plans*.json"))
    raise UserError(f"-p {s.plans}: no {study.plans_file.name} in {study.preprocessed_dataset} (plans there: "
                    f"{', '.join(there) or 'none'}); fix the name, or add --plan to plan and preprocess under it")


def check_plans_of_arms(study: Study) -> None:
    """A model folder of an arm that exists must hold the study's plans (nnU-Net copies them in at training)."""
    for arm in study.arms:
        plans_file = study.arm_plans_file(arm)
        theirs_file = study.model_folder(arm) / "plans.json"
        if not plans_file.is_file() or not theirs_file.is_file():
            continue
        ours = read_json(plans_file, "plans file")
        theirs = read_json(theirs_file, "plans file")
        same = theirs.get("plans_name") == ours.get("plans_name") and \
            theirs.get("configurations", {}).get(arm.configuration) == ours["configurations"].get(arm.configuration)
        if not same:
            raise UserError(f"arm {arm.name}: {study.model_folder(arm)} was trained on other plans than "
                            f"{plans_file} ({arm.configuration} differs); move that model folder away, or give "
                            f"the plans it was trained on (-p)")


def resolve_study(settings: StudySettings) -> Study:
    """Check the input and build the :class:`Study` (no command runs, except the demo preset's dataset)."""
    check_settings(settings)
    output = Path(settings.output).expanduser().resolve()
    state = read_state(output)
    cnn_planner = settings.cnn_planner or (state.cnn_planner if state else None)
    arms = parse_arms(settings.arms, settings.preset, cnn_planner)
    if settings.report_only and state is None:
        raise UserError(f"--report-only: {output} holds no {STATE_FILE}; give the output folder of a study (-o)")
    if PRESETS[settings.preset].synthetic:
        env, dataset_id = _prepare_demo(settings, output)
    elif state is not None and settings.dataset_id is None:
        env, dataset_id = {**os.environ, **state.environment}, int(state.dataset_id)
    else:
        if settings.dataset_id is None:
            raise UserError("give the dataset with -d (e.g. -d 501), or --preset demo for the synthetic one")
        env, dataset_id = dict(os.environ), settings.dataset_id
    from nnunet_swin.environment import ext_trainer_value
    env["nnUNet_extTrainer"] = ext_trainer_value(env.get("nnUNet_extTrainer"))
    paths = StudyPaths(output, _nnunet_base("nnUNet_raw", env), _nnunet_base("nnUNet_preprocessed", env),
                       _nnunet_base("nnUNet_results", env))
    dataset_name = _dataset_folder(paths.raw, dataset_id, "nnUNet_raw").name
    plans_name = settings.plans or (state.plans if state else None) or DEFAULT_PLANS.get(settings.planner)
    if plans_name is None:
        raise UserError(f"planner {settings.planner!r} has no default plans identifier; give it with -p")
    if settings.report_only and settings.arms is None and state is not None:
        arms = parse_arms(state.arm_order, state.preset, cnn_planner) if state.arm_order else arms
    _check_output(output, state, dataset_name, plans_name)
    if state is None:
        state = StudyState(dataset_name, dataset_id, plans_name, settings.planner, settings.preset,
                           {k: str(v) for k, v in (("nnUNet_raw", paths.raw), ("nnUNet_preprocessed", paths.preprocessed),
                                                   ("nnUNet_results", paths.results))})
    if not settings.report_only:
        state.folds, state.arm_order = list(settings.folds), [a.name for a in arms]
        state.preset, state.planner, state.executor = settings.preset, settings.planner, settings.executor
        state.cnn_planner = next((a.planner for a in arms if a.planner), state.cnn_planner)
    settings.folds = list(state.folds)
    suffix = PRESETS[state.preset].suffix if settings.trainer_suffix is None else settings.trainer_suffix
    study = Study(settings, paths, env, dataset_id, dataset_name, plans_name, arms, suffix, state)
    if any(a.subtype for a in arms) and not study.test_split():
        raise UserError(f"subtype-restricted arms ({', '.join(a.name for a in arms if a.subtype)}) are validated on "
                        f"the test split, and {dataset_name} has no imagesTs/labelsTs; add a test split or leave "
                        f"them out of --arms")
    _check_plans_name(study)
    _check_pretrained(study)
    check_plans_of_arms(study)
    return study


# ---------------------------------------------------------------------------------------------------------- run

def build_table(study: Study, journal: Journal) -> list[Step]:
    """The study's steps in order (``study_steps``, ``study_analysis``); --report-only keeps the analysis."""
    from nnunet_swin.workflows import study_analysis as an
    from nnunet_swin.workflows import study_steps as sp

    study.state.test_split = "test split: imagesTs / labelsTs" if study.test_split() else (
        f"no imagesTs/labelsTs: cross-validation predictions (fold_X/validation) of folds "
        f"{', '.join(map(str, study.settings.folds))}")
    train = sp.training_steps(study)
    train_names = {a.name: [s.name for s in train if s.name == f"train {a.name}" or
                            s.name.startswith(f"train {a.name} fold ")] for a in study.arms}
    preset = PRESETS[study.settings.preset]
    setup = [sp.plan_step(study)] + [sp.stock_plan_step(study, a) for a in study.arms if a.planner]
    setup += [sp.pretrain_step(study)] if preset.synthetic else []
    setup += [an.subtypes_step(study)] + ([sp.custom_folds_step(study)] if any(a.subtype for a in study.arms) else [])
    evaluate = an.evaluation_steps(study)
    analysis = sp.prediction_steps(study, train_names) + evaluate + an.comparison_steps(study, evaluate)
    analysis += [an.adi_step(study, tuple(s.name for s in train + evaluate))] + an.cka_steps(study, train_names)
    analysis += [an.cka_floor_step(study)] + an.not_applicable_steps(study)
    table = ([] if study.settings.report_only else setup + train) + analysis
    if study.settings.report_only:
        table.insert(0, an.subtypes_step(study))
    for step in (s for s in table if s.kind in preset.leaves_out):
        step.skip = lambda: (f"not part of the {study.settings.preset} preset (one arm; the analyses of several arms "
                             f"are in `nnunet-swin study --preset demo`)")
    report = study.paths.output / "report.md"

    written = []

    def write() -> None:
        from nnunet_swin.workflows.study_report import write_study_report
        sp.arm_records(study, journal)
        written.append(write_study_report(study))

    step = Step("report", "report", study.paths.logs / "report.log", outputs=lambda: [report], function=write,
                inputs=lambda: [p for s in table if s is not step for p in s.outputs() if p.exists()],
                done=lambda: step.fresh() and (journal.attempts == 0 or bool(written)),
                needs=tuple(s.name for s in table),
                blocking=False, done_because="report.md newer than every result, and nothing ran")
    table.append(step)
    return table


def print_commands(study: Study) -> list[str]:
    """One shell line per arm (its folds chained with ``&&``); finished folds are left out, finished arms too."""
    from nnunet_swin.workflows.study_steps import train_command

    lines = []
    for arm in study.arms:
        cmds = [c for f in study.folds(arm) if (c := train_command(study, arm, f)) is not None]
        if not cmds:
            continue
        keys = ["nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"]
        keys += ["nnUNet_swin_pretrained"] if arm.pretrained else []
        keys += ["nnUNet_compile", "nnUNet_n_proc_DA", "nnUNet_def_n_proc"] if PRESETS[study.settings.preset].synthetic \
            else []
        prefix = " ".join(f"{k}={shlex.quote(study.env[k])}" for k in keys if study.env.get(k))
        lines.append(" && ".join(f"{prefix} {shlex.join(c)}" for c in cmds))
    return lines


@dataclass
class StudyResult:
    report: Path | None
    outcome: dict[str, str]            # step -> done / failed / skipped / blocked / queued
    attempts: int                      # commands run (or jobs submitted) by this call

    @property
    def failed(self) -> list[str]:
        return [n for n, o in self.outcome.items() if o == "failed"]

    @property
    def queued(self) -> list[str]:
        return [n for n, o in self.outcome.items() if o == "queued"]


def make_executor(study: Study, journal: Journal):
    s = study.settings
    local = LocalExecutor(study.env, journal.rel, study.say, s.jobs, s.devices)
    if s.executor == "local":
        return local
    return SlurmExecutor(study.paths.output / "slurm", s.slurm, study.env, journal.rel, study.say, local)


def run_study(settings: StudySettings) -> StudyResult | list[str]:
    """The whole study; returns what came of it (or, with ``print_commands``, the command lines)."""
    study = resolve_study(settings)
    if settings.print_commands:
        return print_commands(study)
    study.paths.output.mkdir(parents=True, exist_ok=True)
    study.save()
    journal = Journal(study.state, study.paths.output, study.save, study.say)
    executor = make_executor(study, journal)
    try:
        outcome = run_steps(build_table(study, journal), executor, journal, wait=settings.slurm.wait)
    finally:
        if isinstance(executor, (LocalExecutor, SlurmExecutor)):
            (executor if isinstance(executor, LocalExecutor) else executor.local).pool.shutdown(wait=False)
    report = study.paths.output / "report.md"
    return StudyResult(report if report.is_file() else None, outcome, journal.attempts)
