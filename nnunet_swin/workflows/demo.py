"""`nnunet-swin demo`: synthetic dataset -> plan and preprocess -> train -> predict -> evaluate -> report, on CPU.

Every training and prediction step is the stock nnU-Net command a user would type (run as a child process in a
self-contained workspace); planning is `nnunet-swin plan_and_preprocess`. What is reduced, and why, is stated in
the console output and in the report:

- backbone ``smit_tiny`` (embed 12, one Swin block per stage) instead of the paper's SMIT, so CPU training fits;
- an encoder pretrained here, in minutes: ``nnunet-swin pretrain --method smit`` on a synthetic CT-like corpus
  (``demo_encoder.py``; no CT-pretrained weights can be downloaded here, and none exist for the reduced backbone).
  It is a real SMIT checkpoint of a very short run, not the paper's CT-pretrained SMIT;
- ``SwinACTTrainer_demo``: the ACT recipe for 30 epochs x 25 iterations instead of 500 x 250;
- a 64 mm field of view for the synthetic scans (smaller volumes).

As the paper fine-tunes, the MRI is scaled to [0, 1] (``-normalization rescale01``), the range the CT encoder saw in
its pretraining (HU window -> [0, 1]).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json, write_text
from nnunet_swin.workflows.workspace import Workspace, nnunet_swin_command, run_logged, tool

MARKER = ".nnunet_swin_demo"
PLANS = "nnUNetSMITPlans"
CONFIGURATION = "3d_fullres"


@dataclass
class DemoSettings:
    """The demo's settings; the command's options, defaults and help come from these fields
    (``cli.options.from_dataclass``)."""

    output: Path = field(default=Path("nnunet_swin_demo"), metadata={
        "flags": ("-o", "--output"), "type": Path, "help": "workspace folder"})
    dataset_id: int = 501
    num_train: int = field(default=16, metadata={"help": "synthetic training cases (at least 2)"})
    num_test: int = field(default=6, metadata={"help": "synthetic test cases"})
    fov_mm: float = field(default=64.0, metadata={"help": "in-plane field of view of the scans in mm"})
    backbone: str = "smit_tiny"
    inplane_patch: int = 64
    trainer: str = field(default="SwinACTTrainer_demo", metadata={"help": "trainer class"})
    fold: int = 0
    num_processes: int = 2
    seed: int = 0
    overwrite: bool = field(default=False, metadata={"help": "replace a previous demo in the output folder"})
    progress: bool = True
    pretrain_epochs: int = field(default=20, metadata={          # the demo encoder's pretraining (demo_encoder)
        "help": "epochs of the encoder's pretraining"})
    pretrain_iterations: int = field(default=20, metadata={"help": "iterations per pretraining epoch"})


@dataclass
class DemoResult:
    workspace: Path
    report: Path
    seconds: dict[str, float] = field(default_factory=dict)
    mean_dice: float = float("nan")


def _prepare_output(settings: DemoSettings) -> Workspace:
    root = Path(settings.output).expanduser().resolve()
    if root.exists() and any(root.iterdir()):
        if not settings.overwrite:
            raise UserError(f"{root} already exists and is not empty; pass --overwrite to replace a previous demo, "
                            f"or choose another --output")
        if not (root / MARKER).is_file():
            raise UserError(f"{root} is not a folder written by `nnunet-swin demo` (no {MARKER} file); refusing to "
                            f"delete it. Choose another --output")
        shutil.rmtree(root)
    ws = Workspace(root).create()
    write_text(root / MARKER, "written by nnunet-swin demo; safe to delete\n")
    return ws


class _Stages:
    """Numbered stage headers on the console and wall time per stage."""

    def __init__(self, names: list[str], progress: bool):
        self.names, self.progress, self.seconds = names, progress, {}
        self._current, self._t0 = None, 0.0

    def start(self, name: str, detail: str = "") -> None:
        self.stop()
        self._current, self._t0 = name, time.time()
        i = self.names.index(name) + 1
        if self.progress:
            print(f"\n[{i}/{len(self.names)}] {name}" + (f": {detail}" if detail else ""), flush=True)

    def stop(self) -> None:
        if self._current is not None:
            self.seconds[self._current] = round(time.time() - self._t0, 1)
            if self.progress:
                print(f"      done in {self.seconds[self._current]:.0f} s", flush=True)
        self._current = None


class _TrainingProgress:
    """An epoch progress bar with loss and pseudo-Dice, fed by the trainer's progress lines (``trainers.progress``)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def __call__(self, line: str) -> None:
        from nnunet_swin.trainers.progress import parse_progress_line

        record = parse_progress_line(line) if self.enabled else None
        if record is None:
            return
        if record["event"] == "encoder":
            for text in record["text"].splitlines()[:2]:
                (self.bar.write if self.bar is not None else print)("      " + text)
        elif record["event"] == "start" and self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=record["num_epochs"], initial=record["epoch"], desc="      epochs", unit="epoch")
        elif record["event"] == "epoch" and self.bar is not None:
            self.bar.set_postfix(loss=_fmt(record["train_loss"]), pseudo_dice=_fmt(record["pseudo_dice"]))
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run_demo(settings: DemoSettings) -> DemoResult:
    """Run the whole demo; returns where the report is. Raises ``UserError`` with the failing step's log tail."""
    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.report import DemoFacts, write_demo_report
    from nnunet_swin.workflows.scoring import mean_dice, score_predictions
    from nnunet_swin.workflows.demo_encoder import DemoPretraining, pretrain_demo_encoder

    ws = _prepare_output(settings)
    env = ws.environment(num_processes=settings.num_processes, da_processes=1)
    stages = _Stages(["synthetic dataset", "plan and preprocess", "pretrain encoder", "train", "predict",
                      "evaluate", "report"], settings.progress)
    say = print if settings.progress else (lambda *a, **k: None)
    say(f"nnunet-swin demo in {ws.root}\n"
        f"  REDUCED for CPU: backbone {settings.backbone} (not the paper's SMIT), trainer {settings.trainer} "
        f"(short schedule), {settings.fov_mm:g} mm synthetic scans\n"
        f"  NO CT-PRETRAINED WEIGHTS: the encoder is SMIT-pretrained here for "
        f"{settings.pretrain_epochs * settings.pretrain_iterations} steps on synthetic CT-like volumes (minutes)")
    commands: list[str] = []

    stages.start("synthetic dataset", f"{settings.num_train} training + {settings.num_test} test cases")
    spec = SyntheticSpec(num_train=settings.num_train, num_test=settings.num_test, fov_mm=settings.fov_mm,
                         seed=settings.seed)
    raw = make_demo_dataset(ws.raw, settings.dataset_id, spec=spec, progress=settings.progress)
    commands.append(f"nnunet-swin make_demo_dataset -d {settings.dataset_id} --num-train {settings.num_train} "
                    f"--num-test {settings.num_test} --fov-mm {settings.fov_mm:g}")

    stages.start("plan and preprocess", f"SMITPlanner, backbone {settings.backbone}")
    plan_args = ["plan_and_preprocess", "-d", str(settings.dataset_id), "-pl", "SMITPlanner", "-backbone",
                 settings.backbone, "-inplane_patch", str(settings.inplane_patch), str(settings.inplane_patch),
                 "-c", CONFIGURATION, "-normalization", "rescale01", "-npfp", str(settings.num_processes), "-np",
                 str(settings.num_processes), "--quiet"]
    run_logged(nnunet_swin_command(*plan_args), env, ws.logs / "plan_and_preprocess.log",
               on_line=lambda line: say("      " + line) if line.startswith(("  3d_", "nnunet-swin plans")) else None)
    commands.append("nnunet-swin " + " ".join(plan_args))
    pre = ws.dataset_folder("preprocessed", settings.dataset_id)
    plans = read_json(pre / f"{PLANS}.json", "plans")
    arch = plans["configurations"][CONFIGURATION]["architecture"]["arch_kwargs"]

    pretraining = DemoPretraining(backbone=arch["backbone"], epochs=settings.pretrain_epochs,
                                  iterations_per_epoch=settings.pretrain_iterations, seed=settings.seed)
    stages.start("pretrain encoder", f"nnunet-swin pretrain --method smit, {arch['backbone']}, "
                                     f"{pretraining.epochs * pretraining.iterations_per_epoch} steps on CPU")
    encoder = pretrain_demo_encoder(ws.weights, env, ws.logs / "pretrain.log", pretraining)
    env["nnUNet_swin_pretrained"] = str(encoder.checkpoint)
    commands.append(f"# {pretraining.corpus_cases} synthetic CT-like volumes: "
                    f"nnunet_swin.datasets.synthetic_ct.make_ct_corpus (seed {pretraining.seed})")
    commands.append(encoder.command)
    say(f"      {encoder.checkpoint}")

    stages.start("train", f"nnUNetv2_train {settings.trainer} on CPU")
    from nnunet_swin.trainers import __all__ as trainer_names
    if settings.trainer not in trainer_names:
        raise UserError(f"unknown trainer {settings.trainer!r}; choose one of {', '.join(trainer_names)}")
    train_cmd = [tool("nnUNetv2_train"), str(settings.dataset_id), CONFIGURATION, str(settings.fold), "-tr",
                 settings.trainer, "-p", PLANS, "-device", "cpu"]
    bar = _TrainingProgress(settings.progress)
    try:
        run_logged(train_cmd, env, ws.logs / "train.log", on_line=bar)
    finally:
        bar.close()
    commands.append(f"export nnUNet_extTrainer={env['nnUNet_extTrainer']} nnUNet_swin_pretrained={encoder.checkpoint}")
    commands.append("nnUNetv2_train " + " ".join(train_cmd[1:]))
    model_folder = ws.results / pre.name / f"{settings.trainer}__{PLANS}__{CONFIGURATION}"

    stages.start("predict", "nnUNetv2_predict on the test split (sliding window, 50% overlap, left-right flip)")
    predictions = ws.root / "predictions"
    from nnunet_swin.raw_dataset.checks import check_image_folder
    from nnunet_swin.raw_dataset.folders import read_dataset_json

    # stock predict dies on one bad file without naming it (and writes none of the good cases): check first
    check_image_folder(raw / "imagesTs", read_dataset_json(raw), num_threads=settings.num_processes)
    predict_cmd = [tool("nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(predictions), "-d",
                   str(settings.dataset_id), "-c", CONFIGURATION, "-f", str(settings.fold), "-tr", settings.trainer,
                   "-p", PLANS, "-device", "cpu", "-npp", "1", "-nps", "1"]
    run_logged(predict_cmd, env, ws.logs / "predict.log",
               on_line=lambda line: say("      " + line) if line.startswith("Predicting ") else None)
    commands.append("nnUNetv2_predict " + " ".join(predict_cmd[1:]))

    stages.start("evaluate", "held-out test split")
    per_case, metric_set = score_predictions(raw / "labelsTs", predictions, ws.root / "evaluation",
                                             subtypes_csv=raw / "subtypes_truth.csv",
                                             num_processes=settings.num_processes)
    result_dice = mean_dice(per_case)
    say(f"      mean Dice {result_dice:.3f} over {len(per_case)} test cases ({metric_set})")

    stages.start("report")
    stages_seconds = dict(stages.seconds)
    facts = DemoFacts(settings=asdict(settings), workspace=ws.root, raw=raw, model_folder=model_folder,
                      fold=settings.fold, predictions=predictions, per_case=per_case, metric_set=metric_set,
                      plans_configuration=plans["configurations"][CONFIGURATION], commands=commands,
                      seconds=stages_seconds, encoder=encoder)
    report = write_demo_report(facts, ws.root / "report")
    stages.stop()
    total = sum(stages.seconds.values())
    say(f"\nDemo finished in {total / 60:.1f} min. Report: {report}")
    return DemoResult(workspace=ws.root, report=report, seconds=dict(stages.seconds), mean_dice=result_dice)

