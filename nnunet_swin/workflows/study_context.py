"""What one study is, once resolved: its settings (``StudySettings``), its folders (``StudyPaths``) and the
``Study`` every step reads (arms, nnU-Net folders, environment, state). The steps (``study_steps``,
``study_analysis``, ``study_splits``) and the orchestration (``study``) all build on it; it imports none of them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json
from nnunet_swin.workflows.study_arms import DEMO_TEST_CASES, DEMO_TRAIN_CASES, ArmSpec
from nnunet_swin.workflows.study_executors import SlurmOptions
from nnunet_swin.workflows.study_state import STATE_FILE, StudyState

FILE_ENDING_DEFAULT = ".nii.gz"


@dataclass
class StudySettings:
    output: Path
    dataset_id: int | None = None
    planner: str = "SMITPlanner"
    plans: str | None = None
    plan: bool = False                   # plan under ``plans`` even though no such plans file exists yet
    backbone: str | None = None
    plan_args: list[str] = field(default_factory=list)
    arms: list[str] | None = None
    folds: list[int] = field(default_factory=lambda: [0])
    preset: str = "paper"
    executor: str = "local"
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    jobs: int = 1
    devices: list[str] | None = None     # CUDA device ids; None: --device
    device: str = "cpu"
    num_processes: int = 2
    print_commands: bool = False
    report_only: bool = False
    progress: bool = True
    seed: int = 0
    demo_num_train: int = DEMO_TRAIN_CASES     # the demo preset's synthetic training cases (--demo-train-cases)
    demo_num_test: int = DEMO_TEST_CASES       # its test cases, stratified by subtype x pf bin (--demo-test-cases)
    demo_pretrain_epochs: int = 20
    demo_pretrain_iterations: int = 20
    cnn_planner: str | None = None       # the CNN arm's stock planner (None: the study's earlier choice, else ResEnc-M)
    cnn_plan_args: list[str] = field(default_factory=list)   # more nnUNetv2_plan_and_preprocess flags for the CNN
    demo_fov_mm: float = 64.0            # the synthetic scans' in-plane field of view (synthetic presets)
    trainer_suffix: str | None = None    # the short-schedule suffix instead of the preset's (e.g. _smoke)


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
    state: StudyState

    @property
    def raw_dataset(self) -> Path:
        return self.paths.raw / self.dataset_name

    @property
    def preprocessed_dataset(self) -> Path:
        return self.paths.preprocessed / self.dataset_name

    @property
    def plans_file(self) -> Path:
        return self.preprocessed_dataset / f"{self.plans_name}.json"

    @property
    def device(self) -> str:
        """The device the stock commands get (``CUDA_VISIBLE_DEVICES`` picks the GPU)."""
        return "cuda" if self.settings.devices is not None or self.settings.device != "cpu" else "cpu"

    @property
    def resources(self) -> str:
        return "gpu" if self.device == "cuda" else "cpu"

    def plans(self) -> dict:
        return read_json(self.plans_file, "plans file")

    def trainer(self, arm: ArmSpec) -> str:
        return arm.trainer + (self.suffix or arm.paper_suffix)

    def arm_plans_name(self, arm: ArmSpec) -> str:
        """The study's plans, or for an arm stock nnU-Net plans itself (the CNN) its planner's plans identifier."""
        from nnunet_swin.workflows.study_arms import stock_plans_name
        return self.plans_name if arm.planner is None else stock_plans_name(arm.planner)

    def arm_plans_file(self, arm: ArmSpec) -> Path:
        return self.preprocessed_dataset / f"{self.arm_plans_name(arm)}.json"

    def model_folder(self, arm: ArmSpec) -> Path:
        return self.paths.results / self.dataset_name / \
            f"{self.trainer(arm)}__{self.arm_plans_name(arm)}__{arm.configuration}"

    def folds(self, arm: ArmSpec) -> list[int]:
        if arm.subtype is None:
            return list(self.settings.folds)
        custom = self.state.custom_folds.get(arm.subtype)
        return [] if custom is None else [int(custom["fold"])]

    def prediction_folder(self, arm: ArmSpec) -> Path:
        return self.prediction_folder_named(arm.name)

    def prediction_folder_named(self, name: str) -> Path:
        return self.paths.output / "predictions" / name

    def reference_folder(self) -> Path:
        return self.raw_dataset / "labelsTs" if self.test_split() else self.paths.output / "cv_reference"

    def file_ending(self) -> str:
        ds = self.raw_dataset / "dataset.json"
        return read_json(ds, "dataset.json").get("file_ending", FILE_ENDING_DEFAULT) if ds.is_file() else \
            FILE_ENDING_DEFAULT

    def test_split(self) -> bool:
        """True when the raw dataset has imagesTs and labelsTs with at least one case."""
        images, labels = self.raw_dataset / "imagesTs", self.raw_dataset / "labelsTs"
        return images.is_dir() and labels.is_dir() and any(labels.glob(f"*{self.file_ending()}"))

    def tumor_labels(self) -> list[int] | None:
        if not self.plans_file.is_file():
            return None
        for arm in (a for a in self.arms if a.swin):
            labels = self.plans().get("configurations", {}).get(arm.configuration, {}).get("swin", {}) \
                .get("tumor_labels")
            if labels:
                return [int(t) for t in labels]
        return None

    def save(self) -> None:
        self.state.save(self.paths.state)

    def say(self, text: str) -> None:
        if self.settings.progress:
            print(text, file=sys.stderr if self.settings.print_commands else sys.stdout, flush=True)


def _nnunet_base(name: str, env: dict[str, str]) -> Path:
    value = env.get(name, "").strip()
    if not value:
        raise UserError(f"the environment variable {name} is not set; set nnUNet_raw, nnUNet_preprocessed and "
                        f"nnUNet_results as for stock nnU-Net (or use --preset demo, which makes its own)")
    return Path(value).expanduser().resolve()


def _dataset_folder(base: Path, dataset_id: int, kind: str) -> Path:
    from nnunet_swin.raw_dataset.folders import find_dataset_folder
    return find_dataset_folder(base, dataset_id, kind)


def _demo_pretraining(settings: StudySettings):
    from nnunet_swin.workflows.demo_encoder import DemoPretraining
    return DemoPretraining(backbone=settings.backbone or "smit_tiny", epochs=settings.demo_pretrain_epochs,
                           iterations_per_epoch=settings.demo_pretrain_iterations, seed=settings.seed)
