"""`nnunet-swin study`: the paper's whole study on one nnU-Net dataset, as one resumable command.

Only stock commands run, each as its own child process whose output goes to ``OUTPUT/logs/<step>.log``:

1. ``nnunet-swin plan_and_preprocess`` when the plans file is missing;
2. ``nnunet-swin subtypes`` (fit on imagesTr/labelsTr, applied to the test split) when a subtype-restricted arm is
   asked for or a test split exists; a subtype-restricted arm's custom fold is appended to nnU-Net's
   ``splits_final.json`` (existing folds untouched);
3. per arm and fold, stock ``nnUNetv2_train``; one process per arm, ``--jobs`` of them at a time;
4. per finished arm, stock ``nnUNetv2_predict`` on ``imagesTs`` (or, with no test split, the cross-validation
   predictions nnU-Net wrote to ``fold_X/validation``);
5. ``nnunet-swin evaluate`` per arm, ``compare`` (Table 2) and ``compare --subtypes``;
6. ``nnunet-swin adi`` (the ACT arm against the cubic arms) and ``nnunet-swin cka`` against the pretrained encoder;
7. ``report.md`` and a self-contained ``report.html`` (``workflows.study_report``).

The state of an arm (per fold, read from nnU-Net's model folder, never from our own bookkeeping):

- ``done``: ``fold_X/checkpoint_final.pth`` exists -> skipped;
- ``interrupted``: only ``fold_X/checkpoint_latest.pth`` exists -> ``nnUNetv2_train ... --c``;
- ``new``: neither -> ``nnUNetv2_train ...``;
- after a run: ``done``, or ``failed`` (non-zero exit; the log tail is kept in ``study.json``) -- the study goes on;
- ``missing``: not trained (``--report-only``, or a run that was never started).

``study.json`` in the output folder records the dataset, plans, arms, folds, custom folds, the status of every arm
and step and which test split was used. Nothing finished is deleted or overwritten: a folder holding another study,
an arm whose model folder was trained on other plans, and similar conflicts stop with a ``UserError`` first.
"""
from __future__ import annotations

import json
import os
import queue
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nnunet_swin.errors import UserError
from nnunet_swin.io import write_json

STATE_FILE = "study.json"
FILE_ENDING_DEFAULT = ".nii.gz"
DEFAULT_PLANS = {"SMITPlanner": "nnUNetSMITPlans", "SwinUNETRPlanner": "nnUNetSwinUNETRPlans"}
CUBIC_ARMS = ("Base", "TA", "Masked")


@dataclass(frozen=True)
class ArmSpec:
    """One arm of the study: a stock trainer on one configuration (and, for a subtype arm, one custom fold)."""

    name: str
    trainer: str            # the recipe's trainer name; the preset adds its short-schedule suffix
    configuration: str
    pretrained: bool
    subtype: str | None = None

    @property
    def cubic(self) -> bool:
        return self.configuration == "3d_cubic"


PAPER_ARMS = {
    "Base": ArmSpec("Base", "SwinBaseTrainer", "3d_cubic", True),
    "TA": ArmSpec("TA", "SwinTATrainer", "3d_cubic", True),
    "ACT": ArmSpec("ACT", "SwinACTTrainer", "3d_fullres", True),
    "Scratch": ArmSpec("Scratch", "SwinScratchTrainer", "3d_fullres", False),
    # the paper's future work: the full cubic field of view, padding tokens excluded from attention
    "Masked": ArmSpec("Masked", "SwinMaskedTrainer", "3d_cubic", True),
}

# preset -> (default arms, trainer-name suffix)
PRESETS = {
    "paper": (["Base", "TA", "ACT", "Scratch"], ""),
    "smoke": (["ACT", "Base"], "_smoke"),
    "demo": (["Base", "TA", "ACT", "Scratch", "Masked", "B-only", "D-only"], "_demo"),
}


def parse_arm(text: str) -> ArmSpec:
    """``Base`` / ``TA`` / ``ACT`` / ``Scratch`` / ``Masked``, or a subtype arm ``B-only`` / ``only:B`` (stock ACT
    trainer)."""
    if text in PAPER_ARMS:
        return PAPER_ARMS[text]
    subtype = text[len("only:"):] if text.startswith("only:") else text[:-len("-only")] if text.endswith("-only") \
        else None
    if subtype:
        return ArmSpec(f"{subtype}-only", "SwinACTTrainer", "3d_fullres", True, subtype=subtype)
    raise UserError(f"unknown arm {text!r}; choose from Base, TA, ACT, Scratch, Masked, or a subtype-restricted arm "
                    f"such as B-only, D-only, only:<subtype>")


# The demo cohort's z-extents (mm = voxels at the demo plans' 1 mm spacing) stand to its 64-voxel cubic crop as the
# paper's test cohort (median 93 [70-120] voxels, 78% padded, mean pf 0.27) stands to SMIT's 128: everything halved.
# With the synthetic default (median 90 mm) a 64^3 crop would pad almost no scan and the study could not show dilution.
DEMO_Z_EXTENTS = {"z_median_mm": 46.5, "z_iqr_mm": (35.0, 60.0), "short_mm": (15.0, 25.0), "z_clip_mm": (20.0, 85.0)}


@dataclass
class StudySettings:
    output: Path
    dataset_id: int | None = None
    planner: str = "SMITPlanner"
    plans: str | None = None
    backbone: str | None = None
    plan_args: list[str] = field(default_factory=list)
    arms: list[str] | None = None
    folds: list[int] = field(default_factory=lambda: [0])
    preset: str = "paper"
    jobs: int = 1
    devices: list[str] | None = None     # CUDA device ids; None: --device
    device: str = "cpu"
    num_processes: int = 2
    print_commands: bool = False
    report_only: bool = False
    progress: bool = True
    seed: int = 0
    demo_num_train: int = 16
    demo_num_test: int = 6
    demo_pretrain_epochs: int = 20
    demo_pretrain_iterations: int = 20


# ---------------------------------------------------------------------------------------------------------- running

def run_command(cmd: list[str], env: dict[str, str], log_file: Path,
                on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run ``cmd`` in its own process, appending its output to ``log_file``; return (exit status, last 25 lines)."""
    from nnunet_swin.workflows.workspace import run_command as run
    return run(cmd, env, log_file, on_line, tail_lines=25)


def _tool(name: str) -> str:
    from nnunet_swin.workflows.workspace import tool
    return tool(name)


def _ours(*args: str) -> list[str]:
    return [sys.executable, "-m", "nnunet_swin", *args]


# ---------------------------------------------------------------------------------------------------------- paths

@dataclass
class StudyPaths:
    """Where the study reads nnU-Net's folders and writes its own outputs."""

    output: Path
    raw: Path
    preprocessed: Path
    results: Path

    @property
    def state(self) -> Path:
        return self.output / STATE_FILE

    @property
    def logs(self) -> Path:
        return self.output / "logs"


def _nnunet_base(name: str, env: dict[str, str]) -> Path:
    value = env.get(name, "").strip()
    if not value:
        raise UserError(f"the environment variable {name} is not set; set nnUNet_raw, nnUNet_preprocessed and "
                        f"nnUNet_results as for stock nnU-Net (or use --preset demo, which makes its own)")
    return Path(value).expanduser().resolve()


def _dataset_folder(base: Path, dataset_id: int, kind: str) -> Path:
    from nnunet_swin.raw_dataset.folders import find_dataset_folder
    return find_dataset_folder(base, dataset_id, kind)


# ---------------------------------------------------------------------------------------------------------- the plan

@dataclass
class Study:
    """Everything resolved before anything runs: paths, plans, arms, the test split."""

    settings: StudySettings
    paths: StudyPaths
    env: dict[str, str]
    dataset_id: int
    dataset_name: str
    plans_name: str
    arms: list[ArmSpec]
    suffix: str
    state: dict

    @property
    def raw_dataset(self) -> Path:
        return self.paths.raw / self.dataset_name

    @property
    def preprocessed_dataset(self) -> Path:
        return self.paths.preprocessed / self.dataset_name

    @property
    def plans_file(self) -> Path:
        return self.preprocessed_dataset / f"{self.plans_name}.json"

    def trainer(self, arm: ArmSpec) -> str:
        return arm.trainer + self.suffix

    def model_folder(self, arm: ArmSpec) -> Path:
        return self.paths.results / self.dataset_name / f"{self.trainer(arm)}__{self.plans_name}__{arm.configuration}"

    def folds(self, arm: ArmSpec) -> list[int]:
        if arm.subtype is None:
            return list(self.settings.folds)
        custom = self.state.get("custom_folds", {}).get(arm.subtype)
        return [] if custom is None else [int(custom["fold"])]

    def file_ending(self) -> str:
        ds = self.raw_dataset / "dataset.json"
        return json.loads(ds.read_text()).get("file_ending", FILE_ENDING_DEFAULT) if ds.is_file() else \
            FILE_ENDING_DEFAULT

    def test_split(self) -> bool:
        """True when the raw dataset has imagesTs and labelsTs with at least one case."""
        images, labels = self.raw_dataset / "imagesTs", self.raw_dataset / "labelsTs"
        ending = self.file_ending()
        return images.is_dir() and labels.is_dir() and any(labels.glob(f"*{ending}"))

    def tumor_labels(self) -> list[int] | None:
        if not self.plans_file.is_file():
            return None
        plans = json.loads(self.plans_file.read_text())
        for arm in self.arms:
            labels = plans.get("configurations", {}).get(arm.configuration, {}).get("swin", {}).get("tumor_labels")
            if labels:
                return [int(t) for t in labels]
        return None

    def save(self) -> None:
        self.state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(self.paths.state, self.state)

    def say(self, text: str) -> None:
        if self.settings.progress:
            print(text, file=sys.stderr if self.settings.print_commands else sys.stdout, flush=True)


def _prepare_demo(settings: StudySettings, output: Path) -> tuple[dict[str, str], int]:
    """The demo preset's own workspace inside the output folder: the synthetic dataset, and the path of the encoder
    ``_demo_checkpoint`` pretrains (``demo_encoder``) before the arms train."""
    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.workspace import Workspace

    settings.backbone = settings.backbone or "smit_tiny"
    if not settings.plan_args:
        # the paper's [0, 1] MRI input, the range the demo encoder saw in its CT pretraining
        settings.plan_args = ["-inplane_patch", "64", "64", "-cubic_size", "64", "-c", "3d_fullres", "-normalization",
                              "rescale01"]
    ws = Workspace(output / "workspace").create()
    env = ws.environment(num_processes=settings.num_processes, da_processes=1)
    env["nnUNet_swin_pretrained"] = str(_demo_pretraining(settings).checkpoint(ws.weights))
    dataset_id = settings.dataset_id or 501
    if not any(ws.raw.glob(f"Dataset{dataset_id:03d}_*")):
        spec = SyntheticSpec(num_train=settings.demo_num_train, num_test=settings.demo_num_test, fov_mm=64.0,
                             seed=settings.seed, **DEMO_Z_EXTENTS)
        make_demo_dataset(ws.raw, dataset_id, spec=spec, progress=settings.progress)
    return env, dataset_id


def _check_output(output: Path, state: dict | None, dataset_name: str, plans_name: str) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"output folder {output} is a file; give a folder (-o)")
    if state is None:
        if output.is_dir() and any(p.name != "workspace" for p in output.iterdir()):
            raise UserError(f"output folder {output} is not empty and holds no {STATE_FILE}; give a new or empty "
                            f"folder (-o), or the folder of an earlier study of {dataset_name}")
        return
    if (state.get("dataset"), state.get("plans")) != (dataset_name, plans_name):
        raise UserError(f"output folder {output} holds another study ({state.get('dataset')}, {state.get('plans')}), "
                        f"not {dataset_name} with {plans_name}; give another folder (-o) for this one")


def _read_state(output: Path) -> dict | None:
    path = output / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); it was not written by `nnunet-swin study`, give another "
                        f"folder (-o)") from None
    if not isinstance(state, dict) or state.get("kind") != "nnunet-swin study":
        raise UserError(f"{path} was not written by `nnunet-swin study`; give another folder (-o)")
    return state


def resolve_study(settings: StudySettings) -> Study:
    """Check the input and build the :class:`Study` (no command runs, except the demo preset's dataset)."""
    if settings.preset not in PRESETS:
        raise UserError(f"unknown preset {settings.preset!r}; choose one of {', '.join(PRESETS)}")
    if settings.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {settings.jobs}")
    if settings.devices is not None and len(settings.devices) < 1:
        raise UserError("--devices needs at least one device id, e.g. --devices 0 1")
    default_arms, suffix = PRESETS[settings.preset]
    arms = [parse_arm(a) for a in (settings.arms or default_arms)]
    if len({a.name for a in arms}) != len(arms):
        raise UserError(f"an arm is named twice in --arms {' '.join(settings.arms or [])}")
    output = Path(settings.output).expanduser().resolve()
    state = _read_state(output)
    if settings.report_only and state is None:
        raise UserError(f"--report-only: {output} holds no {STATE_FILE}; give the output folder of a study (-o)")

    if settings.preset == "demo":
        env, dataset_id = _prepare_demo(settings, output)
    elif state is not None and settings.dataset_id is None:
        env, dataset_id = {**os.environ, **state.get("environment", {})}, int(state["dataset_id"])
    else:
        if settings.dataset_id is None:
            raise UserError("give the dataset with -d (e.g. -d 501), or --preset demo for the synthetic one")
        env, dataset_id = dict(os.environ), settings.dataset_id
    from nnunet_swin.environment import ext_trainer_value
    env["nnUNet_extTrainer"] = ext_trainer_value(env.get("nnUNet_extTrainer"))
    paths = StudyPaths(output, _nnunet_base("nnUNet_raw", env), _nnunet_base("nnUNet_preprocessed", env),
                       _nnunet_base("nnUNet_results", env))
    dataset_name = _dataset_folder(paths.raw, dataset_id, "nnUNet_raw").name
    plans_name = settings.plans or (state or {}).get("plans") or DEFAULT_PLANS.get(settings.planner)
    if plans_name is None:
        raise UserError(f"planner {settings.planner!r} has no default plans identifier; give it with -p")
    if settings.report_only and settings.arms is None and state is not None:
        arms = [parse_arm(a) for a in state.get("arm_order", [])] or arms
    _check_output(output, state, dataset_name, plans_name)
    fresh = {"kind": "nnunet-swin study", "dataset": dataset_name, "dataset_id": dataset_id, "plans": plans_name,
             "planner": settings.planner, "preset": settings.preset,
             "environment": {k: str(v) for k, v in (("nnUNet_raw", paths.raw),
                                                    ("nnUNet_preprocessed", paths.preprocessed),
                                                    ("nnUNet_results", paths.results))},
             "arms": {}, "custom_folds": {}, "steps": {}}
    state = {**fresh, **(state or {})}
    if not settings.report_only:
        state["folds"] = list(settings.folds)
        state["arm_order"] = [a.name for a in arms]
        for key in ("preset", "planner"):
            state[key] = fresh[key]
    settings.folds = list(state.get("folds", settings.folds))
    study = Study(settings, paths, env, dataset_id, dataset_name, plans_name, arms, PRESETS[state["preset"]][1],
                  state)
    if any(a.subtype for a in arms) and not study.test_split():
        raise UserError(f"subtype-restricted arms ({', '.join(a.name for a in arms if a.subtype)}) are validated on "
                        f"the test split, and {dataset_name} has no imagesTs/labelsTs; add a test split or leave "
                        f"them out of --arms")
    check_plans_of_arms(study)
    return study


def check_plans_of_arms(study: Study) -> None:
    """A model folder of an arm that exists must hold the study's plans (nnU-Net copies them in at training)."""
    if not study.plans_file.is_file():
        return
    ours = json.loads(study.plans_file.read_text())
    for arm in study.arms:
        theirs_file = study.model_folder(arm) / "plans.json"
        if not theirs_file.is_file():
            continue
        theirs = json.loads(theirs_file.read_text())
        same = theirs.get("plans_name") == ours.get("plans_name") and \
            theirs.get("configurations", {}).get(arm.configuration) == ours["configurations"].get(arm.configuration)
        if not same:
            raise UserError(f"arm {arm.name}: {study.model_folder(arm)} was trained on other plans than "
                            f"{study.plans_file} ({arm.configuration} differs); move that model folder away, or give "
                            f"the plans it was trained on (-p)")


# ---------------------------------------------------------------------------------------------------------- arms

def fold_state(model_folder: Path, fold: int) -> str:
    """``done`` (checkpoint_final.pth), ``interrupted`` (only checkpoint_latest.pth) or ``new``."""
    fold_dir = model_folder / f"fold_{fold}"
    if (fold_dir / "checkpoint_final.pth").is_file():
        return "done"
    if (fold_dir / "checkpoint_latest.pth").is_file():
        return "interrupted"
    return "new"


def train_command(study: Study, arm: ArmSpec, fold: int, device: str) -> list[str] | None:
    """The stock ``nnUNetv2_train`` call for one fold of an arm in its current state (None when it is done)."""
    state = fold_state(study.model_folder(arm), fold)
    if state == "done":
        return None
    cmd = [_tool("nnUNetv2_train"), str(study.dataset_id), arm.configuration, str(fold), "-tr", study.trainer(arm),
           "-p", study.plans_name, "-device", "cpu" if device == "cpu" else "cuda"]
    return cmd + (["--c"] if state == "interrupted" else [])


def _env_prefix(study: Study, arm: ArmSpec) -> dict[str, str]:
    """The variables a printed command line needs (the nnU-Net folders, our trainer folder, the encoder)."""
    keys = ["nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"]
    if arm.pretrained:
        keys.append("nnUNet_swin_pretrained")
    if study.settings.preset == "demo":
        keys += ["nnUNet_compile", "nnUNet_n_proc_DA", "nnUNet_def_n_proc"]
    return {k: study.env[k] for k in keys if study.env.get(k)}


def print_commands(study: Study) -> list[str]:
    """One shell line per arm (its folds chained with ``&&``); finished folds are left out, finished arms too."""
    lines = []
    device = "cpu" if study.settings.devices is None and study.settings.device == "cpu" else "cuda"
    for arm in study.arms:
        cmds = [c for f in study.folds(arm) if (c := train_command(study, arm, f, device)) is not None]
        if not cmds:
            continue
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in _env_prefix(study, arm).items())
        lines.append(" && ".join(f"{prefix} {shlex.join(c)}" for c in cmds))
    return lines


class _TrainingEcho:
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
            loss = record.get("train_loss")
            dice = record.get("pseudo_dice")
            self.study.say(f"  {self.label}: epoch {record['epoch'] + 1}/{record['num_epochs']} loss "
                           f"{'n/a' if loss is None else f'{loss:.3f}'} pseudo-Dice "
                           f"{'n/a' if dice is None else f'{dice:.3f}'}")


def train_arm(study: Study, arm: ArmSpec, device: str) -> dict:
    """Train every unfinished fold of ``arm`` (each fold one stock process); return the arm's record."""
    log = study.paths.logs / f"train_{arm.name}.log"
    record = {"trainer": study.trainer(arm), "configuration": arm.configuration, "folds": study.folds(arm),
              "model_folder": str(study.model_folder(arm)), "log": str(log), "subtype": arm.subtype}
    if not record["folds"]:
        return {**record, "status": "failed", "reason": f"no custom fold for subtype {arm.subtype}"}
    env = dict(study.env)
    if device != "cpu":
        env["CUDA_VISIBLE_DEVICES"] = device
    runs = []
    for fold in record["folds"]:
        cmd = train_command(study, arm, fold, device)
        if cmd is None:
            runs.append({"fold": fold, "action": "skipped (checkpoint_final.pth present)"})
            continue
        action = "resumed (--c)" if "--c" in cmd else "trained"
        study.say(f"  {arm.name} fold {fold}: {action.split(' ')[0].replace('trained', 'training')} "
                  f"({study.trainer(arm)}, {arm.configuration}, device {device})")
        code, tail = run_command(cmd, env, log, _TrainingEcho(study, f"{arm.name} fold {fold}"))
        runs.append({"fold": fold, "action": action, "command": shlex.join(cmd), "exit_status": code})
        if code != 0 or fold_state(study.model_folder(arm), fold) != "done":
            study.say(f"  {arm.name} fold {fold}: FAILED (exit status {code}); log {log}")
            return {**record, "status": "failed", "runs": runs, "log_tail": tail,
                    "reason": f"nnUNetv2_train exited with status {code}"}
    return {**record, "status": "done", "runs": runs}


def arm_status(study: Study, arm: ArmSpec) -> str:
    folds = study.folds(arm)
    if folds and all(fold_state(study.model_folder(arm), f) == "done" for f in folds):
        return "done"
    previous = study.state.get("arms", {}).get(arm.name, {}).get("status")
    return "failed" if previous == "failed" else "missing"


def arm_cost(study: Study, arm: ArmSpec) -> dict:
    """What a finished arm cost: its patch and tokens per patch, the median and total epoch time over its folds
    (nnU-Net's own epoch timestamps in ``checkpoint_final.pth``) and, once it ran, the prediction's wall time."""
    import numpy as np

    from nnunet_swin.workflows.training_log import training_curve

    plans = json.loads(study.plans_file.read_text())
    config = plans["configurations"][arm.configuration]
    patch = [int(v) for v in config["patch_size"]]
    embed = config["architecture"]["arch_kwargs"].get("patch_size", 2)
    embed = [int(embed)] * 3 if isinstance(embed, (int, float)) else [int(v) for v in embed]
    seconds = []
    for fold in study.folds(arm):
        curve = training_curve(study.model_folder(arm) / f"fold_{fold}" / "checkpoint_final.pth")
        if "epoch_seconds" in curve:
            seconds += [float(v) for v in curve["epoch_seconds"]]
    cost = {"patch_size": patch, "tokens_per_patch": int(np.prod([p // e for p, e in zip(patch, embed)])),
            "epochs": len(seconds), "median_epoch_seconds": float(np.median(seconds)) if seconds else None,
            "training_seconds": float(np.sum(seconds)) if seconds else None}
    prediction = study.state["arms"].get(arm.name, {}).get("prediction", {})
    if prediction.get("seconds") is not None:
        cost["prediction_seconds"] = prediction["seconds"]
    return cost


def train_arms(study: Study) -> None:
    """Run the arms' training jobs, ``--jobs`` at a time, one device each; record every arm as it ends."""
    s = study.settings
    devices: queue.Queue = queue.Queue()
    for d in (s.devices if s.devices is not None else [s.device] * s.jobs):
        devices.put(d)

    def job(arm: ArmSpec) -> None:
        device = devices.get()
        try:
            record = train_arm(study, arm, device)
        except UserError as e:     # e.g. a tool not installed: the arm fails, the others go on
            record = {"status": "failed", "reason": str(e), "log": str(study.paths.logs / f"train_{arm.name}.log")}
        finally:
            devices.put(device)
        with lock:
            study.state["arms"][arm.name] = record
            study.save()

    import threading
    lock = threading.Lock()
    workers = min(s.jobs, len(s.devices) if s.devices is not None else s.jobs)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(job, study.arms))


# ---------------------------------------------------------------------------------------------------------- steps

def record_step(study: Study, name: str, status: str, **fields) -> dict:
    study.state["steps"][name] = {"status": status, **fields}
    study.save()
    return study.state["steps"][name]


def run_step(study: Study, name: str, cmd: list[str], log_name: str | None = None) -> bool:
    """Run one of our commands (or a stock one) as its own process and record it; True when it succeeded."""
    log = study.paths.logs / f"{log_name or name}.log"
    study.say(f"[{name}] {shlex.join(cmd[2:] if cmd[0] == sys.executable else cmd)[:160]}")
    code, tail = run_command(cmd, study.env, log)
    if code != 0:
        study.say(f"[{name}] FAILED (exit status {code}); log {log}")
        record_step(study, name, "failed", log=str(log), exit_status=code, log_tail=tail)
        return False
    record_step(study, name, "done", log=str(log))
    return True


def plan(study: Study) -> None:
    if study.plans_file.is_file():
        record_step(study, "plan", "skipped", reason=f"{study.plans_file} exists")
        return
    s = study.settings
    cmd = _ours("plan_and_preprocess", "-d", str(study.dataset_id), "-pl", s.planner, "-npfp", str(s.num_processes),
                "-np", str(s.num_processes), "--no_pbar")
    if s.plans:
        cmd += ["-overwrite_plans_name", s.plans]
    if s.backbone:
        cmd += ["-backbone", s.backbone]
    cmd += list(s.plan_args)
    if not run_step(study, "plan", cmd) or not study.plans_file.is_file():
        step = study.state["steps"]["plan"]
        raise UserError(f"planning failed, nothing was trained; see {step['log']}")


def _case_ids(folder: Path, ending: str, channel_suffix: bool) -> list[str]:
    cut = len(ending) + (5 if channel_suffix else 0)
    pattern = f"*_0000{ending}" if channel_suffix else f"*{ending}"
    return sorted(p.name[:-cut] for p in folder.glob(pattern))


def subtypes(study: Study) -> None:
    """Fit the subtypes on imagesTr/labelsTr and apply them to the test split (skipped when already done)."""
    out = study.paths.output / "subtypes"
    if (out / "subtypes_summary.json").is_file() and (out / "subtypes_train.csv").is_file():
        if study.state["steps"].get("subtypes", {}).get("status") != "done":
            record_step(study, "subtypes", "done", log=str(study.paths.logs / "subtypes.log"))
        return
    raw = study.raw_dataset
    cmd = _ours("subtypes", "--train-images", str(raw / "imagesTr"), "--train-labels", str(raw / "labelsTr"),
                "-o", str(out), "--file-ending", study.file_ending(), "--quiet")
    if study.test_split():
        cmd += ["--test-images", str(raw / "imagesTs"), "--test-labels", str(raw / "labelsTs")]
    if study.tumor_labels():
        cmd += ["--tumor-labels", *map(str, study.tumor_labels())]
    run_step(study, "subtypes", cmd)


def _read_subtypes(csv: Path) -> dict[str, str]:
    import pandas as pd
    table = pd.read_csv(csv, dtype={"case_id": str, "subtype": str})
    return dict(zip(table.case_id, table.subtype))


def default_splits(study: Study) -> list[dict]:
    """nnU-Net's own 5-fold split of the preprocessed cases, exactly as ``nnUNetTrainer.do_split`` would write it."""
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    plans = json.loads(study.plans_file.read_text())
    data_id = plans["configurations"]["3d_fullres"].get("data_identifier", f"{study.plans_name}_3d_fullres")
    folder = study.preprocessed_dataset / data_id
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist; preprocess the dataset first (nnunet-swin plan_and_preprocess)")
    keys = sorted(infer_dataset_class(str(folder)).get_identifiers(str(folder)))
    if len(keys) < 5:
        raise UserError(f"{study.dataset_name} has {len(keys)} training cases, too few for nnU-Net's 5-fold split; "
                        f"write your own {study.preprocessed_dataset / 'splits_final.json'}")
    return generate_crossval_split(keys, seed=12345, n_splits=5)


def custom_fold(subtype_of: dict[str, str], subtype: str) -> dict:
    """The fold whose training set holds the training cases of one subtype; the other cases validate it."""
    train = sorted(c for c, s in subtype_of.items() if s == subtype)
    val = sorted(c for c, s in subtype_of.items() if s != subtype)
    if not train:
        names = ", ".join(sorted(set(subtype_of.values())))
        raise UserError(f"no training case has subtype {subtype!r} (the subtypes found are {names}); choose "
                        f"an arm such as only:<one of them>")
    return {"train": train, "val": val or train[:1]}


def write_custom_folds(study: Study) -> None:
    """Append one fold per subtype arm to ``splits_final.json`` (existing folds are kept as they are)."""
    wanted = [a.subtype for a in study.arms if a.subtype]
    if not wanted:
        return
    csv = study.paths.output / "subtypes" / "subtypes_train.csv"
    if not csv.is_file():
        for sub in wanted:
            study.state["custom_folds"].pop(sub, None)
        study.save()
        return
    subtype_of = _read_subtypes(csv)
    splits_file = study.preprocessed_dataset / "splits_final.json"
    splits = json.loads(splits_file.read_text()) if splits_file.is_file() else default_splits(study)
    changed = not splits_file.is_file()
    for sub in wanted:
        fold = custom_fold(subtype_of, sub)
        recorded = study.state["custom_folds"].get(sub)
        if recorded is not None:
            index = int(recorded["fold"])
            if index < len(splits) and sorted(splits[index]["train"]) == fold["train"]:
                continue
            raise UserError(f"{splits_file} fold {index}, recorded for the {sub}-only arm, no longer holds its "
                            f"training cases; restore the file or start the study in a new folder (-o)")
        for index, existing in enumerate(splits):  # the same fold already there (e.g. another study): reuse it
            if sorted(existing["train"]) == fold["train"] and sorted(existing["val"]) == fold["val"]:
                break
        else:
            splits.append(fold)
            index, changed = len(splits) - 1, True
        study.state["custom_folds"][sub] = {"fold": index, "train": fold["train"], "val": fold["val"],
                                            "splits_file": str(splits_file)}
    if changed:
        write_json(splits_file, splits)
    study.save()


def _test_cases(study: Study) -> list[str]:
    return _case_ids(study.raw_dataset / "labelsTs", study.file_ending(), False)


def prediction_folder(study: Study, arm: ArmSpec) -> Path:
    return study.paths.output / "predictions" / arm.name


def predict_arm(study: Study, arm: ArmSpec) -> bool:
    """Stock ``nnUNetv2_predict`` of a finished arm on imagesTs (skipped when every case is already predicted)."""
    out = prediction_folder(study, arm)
    ending = study.file_ending()
    cases = _test_cases(study)
    checkpoints = {str(f): (study.model_folder(arm) / f"fold_{f}" / "checkpoint_final.pth").stat().st_mtime
                   for f in study.folds(arm)}
    previous = study.state["arms"].get(arm.name, {}).get("prediction", {})
    current = previous.get("checkpoints") == checkpoints
    if current and out.is_dir() and all((out / f"{c}{ending}").is_file() for c in cases):
        return True
    s = study.settings
    env = dict(study.env)
    device = "cpu"
    if s.devices is not None:
        env["CUDA_VISIBLE_DEVICES"], device = s.devices[0], "cuda"
    elif s.device != "cpu":
        device = "cuda"
    from nnunet_swin.raw_dataset.checks import check_image_folder
    from nnunet_swin.raw_dataset.folders import read_dataset_json

    # stock nnUNetv2_predict dies on one bad file without naming it: name it first
    check_image_folder(study.raw_dataset / "imagesTs", read_dataset_json(study.raw_dataset))
    cmd = [_tool("nnUNetv2_predict"), "-i", str(study.raw_dataset / "imagesTs"), "-o", str(out), "-d",
           str(study.dataset_id), "-c", arm.configuration, "-f", *map(str, study.folds(arm)), "-tr",
           study.trainer(arm), "-p", study.plans_name, "-device", device, "-npp", "1", "-nps", "1"]
    if current:  # an interrupted prediction of the same model: keep the cases already written
        cmd.append("--continue_prediction")
    log = study.paths.logs / f"predict_{arm.name}.log"
    study.say(f"[predict] {arm.name}: nnUNetv2_predict on imagesTs")
    started = time.perf_counter()
    code, tail = run_command(cmd, env, log)
    ok = code == 0 and all((out / f"{c}{ending}").is_file() for c in cases)
    study.state["arms"].setdefault(arm.name, {})["prediction"] = {
        "status": "done" if ok else "failed", "folder": str(out), "log": str(log), "command": shlex.join(cmd),
        "checkpoints": checkpoints, "cases": len(cases),
        **({"seconds": round(time.perf_counter() - started, 2)} if ok and not current else {}),
        **({} if ok else {"log_tail": tail})}
    study.save()
    return ok


def cross_validation_folder(study: Study, arm: ArmSpec) -> Path | None:
    """The arm's cross-validation predictions of every study fold gathered (as links) into one folder, or None."""
    ending = study.file_ending()
    out = study.paths.output / "predictions" / arm.name
    files = []
    for fold in study.folds(arm):
        val = study.model_folder(arm) / f"fold_{fold}" / "validation"
        if not (val / "summary.json").is_file():
            return None
        files += sorted(val.glob(f"*{ending}"))
    if not files:
        return None
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        link = out / f.name
        if not link.exists():
            os.symlink(f, link)
    return out


def cross_validation_reference(study: Study, folders: dict[str, Path]) -> Path:
    """Links to the labelsTr files of the cases every arm predicted in cross-validation."""
    ending = study.file_ending()
    common = set.intersection(*[set(p.name for p in f.glob(f"*{ending}")) for f in folders.values()])
    out = study.paths.output / "cv_reference"
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(common):
        link = out / name
        if not link.exists():
            os.symlink(study.raw_dataset / "labelsTr" / name, link)
    for stale in out.glob(f"*{ending}"):
        if stale.name not in common:
            stale.unlink()
    return out


def predictions(study: Study, done: list[ArmSpec]) -> tuple[Path | None, dict[str, Path]]:
    """(reference folder, arm -> prediction folder) on the test split, else on the cross-validation predictions."""
    if study.test_split():
        study.state["test_split"] = "test split: imagesTs / labelsTs"
        folders = {a.name: prediction_folder(study, a) for a in done if predict_arm(study, a)}
        return study.raw_dataset / "labelsTs", folders
    study.state["test_split"] = (f"no imagesTs/labelsTs: cross-validation predictions (fold_X/validation) of folds "
                                 f"{', '.join(map(str, study.settings.folds))}")
    folders = {a.name: f for a in done if (f := cross_validation_folder(study, a)) is not None}
    if not folders:
        study.save()
        raise UserError(f"{study.dataset_name} has no test split (imagesTs + labelsTs) and no arm has finished "
                        f"cross-validation predictions (fold_X/validation); train the arms first (run without "
                        f"--report-only) or add a test split")
    return cross_validation_reference(study, folders), folders


def evaluate_and_compare(study: Study, reference: Path, folders: dict[str, Path]) -> None:
    tumor = study.tumor_labels()
    common = ["--dataset-json", str(study.raw_dataset / "dataset.json"), "-np", str(study.settings.num_processes),
              "--no-progress"] + (["--tumor-labels", *map(str, tumor)] if tumor else [])
    for name, folder in folders.items():
        run_step(study, f"evaluate {name}", _ours("evaluate", str(reference), str(folder), "-o",
                                                   str(study.paths.output / "evaluation" / name), *common),
                 log_name=f"evaluate_{name}")
    if len(folders) < 2:
        record_step(study, "compare", "skipped", reason=f"{len(folders)} arm(s) with predictions; comparing needs 2")
        record_step(study, "compare by subtype", "skipped", reason="comparing needs 2 arms with predictions")
        return
    names, paths = list(folders), [str(p) for p in folders.values()]
    run_step(study, "compare", _ours("compare", str(reference), *paths, "--names", *names, "-o",
                                     str(study.paths.output / "comparison"), *common))
    split = "test" if study.test_split() else "train"
    subtype_csv = study.paths.output / "subtypes" / f"subtypes_{split}.csv"
    if not subtype_csv.is_file():
        record_step(study, "compare by subtype", "skipped", reason=f"no {subtype_csv.name} (subtypes step)")
        return
    run_step(study, "compare by subtype", _ours("compare", str(reference), *paths, "--names", *names, "--subtypes",
                                                str(subtype_csv), "-o",
                                                str(study.paths.output / "comparison_by_subtype"), *common),
             log_name="compare_by_subtype")


def _analysis_images(study: Study, minimum: int = 1) -> Path:
    """imagesTs when it holds at least ``minimum`` cases, else imagesTr."""
    ts = study.raw_dataset / "imagesTs"
    ending = study.file_ending()
    if ts.is_dir() and len(_case_ids(ts, ending, True)) >= minimum:
        return ts
    return study.raw_dataset / "imagesTr"


def _device_arg(study: Study) -> str:
    return "cuda" if study.settings.devices is not None or study.settings.device != "cpu" else "cpu"


def adi(study: Study, done: list[ArmSpec]) -> None:
    """ADI of the ACT arm against the cubic arms, against padding fraction; surface Dice binned by pf from the
    evaluation of the first cubic arm (TA, else Base: the paper's Figure 4E bins by the cubic crop's pf, which is 0
    under ACT for most scans), or ACT's when no cubic arm finished."""
    act = next((a for a in done if a.name == "ACT"), None)
    if act is None:
        record_step(study, "adi", "skipped", reason="the ACT arm has not finished")
        return
    cubic = sorted((a for a in done if a.name in CUBIC_ARMS), key=lambda a: (a.name != "TA", a.name != "Base"))
    models = cubic[:1] + [act] + cubic[1:]
    cmd = _ours("adi", "-i", str(_analysis_images(study)), "-o", str(study.paths.output / "adi"), "-f",
                str(study.folds(act)[0]), "--device", _device_arg(study), "--quiet")
    for a in models:
        cmd += ["-m", str(study.model_folder(a)), "--label", a.name]
    evaluation = study.paths.output / "evaluation" / models[0].name / "metrics_per_case.csv"
    if evaluation.is_file():
        cmd += ["--evaluation", str(evaluation)]
    run_step(study, "adi", cmd)


def pretrained_checkpoint(study: Study) -> Path | None:
    from nnunet_swin.trainers.pretrained import PRETRAINED_ENV, resolve_pretrained_checkpoint

    if not study.env.get(PRETRAINED_ENV, "").strip():
        return None
    plans = json.loads(study.plans_file.read_text())
    backbone = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["backbone"]
    old = os.environ.get(PRETRAINED_ENV)
    os.environ[PRETRAINED_ENV] = study.env[PRETRAINED_ENV]
    try:
        return resolve_pretrained_checkpoint(backbone)
    except UserError:
        return None
    finally:
        if old is None:
            os.environ.pop(PRETRAINED_ENV, None)
        else:
            os.environ[PRETRAINED_ENV] = old


def cka(study: Study, done: list[ArmSpec]) -> None:
    """CKA of every finished paper arm against the pretrained encoder (needs ``nnUNet_swin_pretrained``)."""
    checkpoint = pretrained_checkpoint(study)
    if checkpoint is None:
        record_step(study, "cka", "skipped", reason="nnUNet_swin_pretrained is not set or holds no checkpoint for "
                                                    "the plans' backbone")
        return
    arms = [a for a in done if a.subtype is None]
    if not arms:
        record_step(study, "cka", "skipped", reason="no arm has finished")
        return
    images = _analysis_images(study, minimum=4)
    n = len(_case_ids(images, study.file_ending(), True))
    if n < 4:
        record_step(study, "cka", "skipped", reason=f"CKA needs at least 4 images, {images} holds {n}")
        return
    results = {}
    for a in arms:
        ok = run_step(study, f"cka {a.name}", _ours(
            "cka", "--pretrained", str(checkpoint), "-b", str(study.model_folder(a)), "--fold-b",
            str(study.folds(a)[0]), "--label-a", "pretrained", "--label-b", a.name, "-i", str(images), "-o",
            str(study.paths.output / "cka" / a.name), "--batch-size", str(min(8, n)), "--device",
            _device_arg(study), "--quiet"), log_name=f"cka_{a.name}")
        results[a.name] = "done" if ok else "failed"
    record_step(study, "cka", "done" if all(v == "done" for v in results.values()) else "failed",
                images=str(images), checkpoint=str(checkpoint), arms=results)


# ---------------------------------------------------------------------------------------------------------- run

def run_study(settings: StudySettings) -> Path | list[str]:
    """The whole study; returns the report path (or, with ``print_commands``, the command lines)."""
    from nnunet_swin.workflows.study_report import write_study_report

    study = resolve_study(settings)
    study.paths.output.mkdir(parents=True, exist_ok=True)
    study.save()
    if not settings.report_only:
        plan(study)
        check_plans_of_arms(study)
        subtypes(study)
        write_custom_folds(study)
        if settings.preset == "demo":
            _demo_checkpoint(study)
        if settings.print_commands:
            return print_commands(study)
        train_arms(study)
    else:
        if settings.print_commands:
            return print_commands(study)
    for arm in study.arms:
        status = arm_status(study, arm)
        record = study.state["arms"].setdefault(arm.name, {})
        record.update({"status": status, "trainer": study.trainer(arm), "configuration": arm.configuration,
                       "folds": study.folds(arm), "model_folder": str(study.model_folder(arm)),
                       "subtype": arm.subtype})
        record.setdefault("log", str(study.paths.logs / f"train_{arm.name}.log"))
    study.save()
    done = [a for a in study.arms if study.state["arms"][a.name]["status"] == "done"]
    if settings.report_only:
        subtypes(study)
    reference, folders = predictions(study, done)
    for arm in done:
        study.state["arms"][arm.name]["cost"] = arm_cost(study, arm)
    study.save()
    evaluate_and_compare(study, reference, folders)
    adi(study, done)
    cka(study, done)
    return write_study_report(study)


def _demo_pretraining(settings: StudySettings):
    from nnunet_swin.workflows.demo_encoder import DemoPretraining
    return DemoPretraining(backbone=settings.backbone or "smit_tiny", epochs=settings.demo_pretrain_epochs,
                           iterations_per_epoch=settings.demo_pretrain_iterations, seed=settings.seed)


def _demo_checkpoint(study: Study) -> None:
    """The demo preset's encoder: SMIT-pretrained by ``nnunet-swin pretrain`` in minutes (``demo_encoder``)."""
    from nnunet_swin.workflows.demo_encoder import pretrain_demo_encoder
    from nnunet_swin.workflows.workspace import Workspace

    study.say("[pretrain] the demo encoder: nnunet-swin pretrain --method smit on synthetic CT-like volumes")
    encoder = pretrain_demo_encoder(Workspace(study.paths.output / "workspace").weights, study.env,
                                    study.paths.logs / "pretrain.log", _demo_pretraining(study.settings))
    study.state["pretrained_note"] = f"encoder {encoder.description}: `{encoder.checkpoint}` (made by `{encoder.command}`)"
