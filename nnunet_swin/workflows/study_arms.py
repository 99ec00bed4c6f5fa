"""The study's arms and presets: which stock trainer runs on which configuration, and the short-schedule suffix a
preset adds (``trainers.short_variants``, ``trainers.cnn_baseline``).

Every arm runs on the study's plans except the CNN baseline, which stock nnU-Net plans itself (``planner``: a stock
planner, ``nnUNetPlannerResEncM`` unless ``--cnn-planner`` names another) under that planner's own plans identifier.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from dataclasses import dataclass
from pathlib import Path

from nnunet_swin.errors import UserError

DEFAULT_PLANS = {"SMITPlanner": "nnUNetSMITPlans", "SwinUNETRPlanner": "nnUNetSwinUNETRPlans"}
CUBIC_ARMS = ("Base", "TA", "Masked")
DEFAULT_CNN_PLANNER = "nnUNetPlannerResEncM"
# the stock planners' default plans identifiers (checked against nnU-Net by a test); others are looked up
STOCK_PLANS = {"nnUNetPlannerResEncM": "nnUNetResEncUNetMPlans", "nnUNetPlannerResEncL": "nnUNetResEncUNetLPlans",
               "nnUNetPlannerResEncXL": "nnUNetResEncUNetXLPlans", "ExperimentPlanner": "nnUNetPlans"}


@dataclass(frozen=True)
class ArmSpec:
    """One arm of the study: a stock trainer on one configuration (and, for a subtype arm, one custom fold)."""

    name: str
    trainer: str            # the recipe's trainer name; the preset adds its short-schedule suffix
    configuration: str
    pretrained: bool
    subtype: str | None = None
    planner: str | None = None      # a stock nnU-Net planner planning this arm's own plans (the CNN); None: ours
    paper_suffix: str = ""          # the suffix under the paper preset (which adds none to the Swin trainers)

    @property
    def cubic(self) -> bool:
        return self.configuration == "3d_cubic"

    @property
    def swin(self) -> bool:
        """A Swin network of the study's plans (ADI and CKA apply); False for the CNN baseline."""
        return self.planner is None


PAPER_ARMS = {
    "Base": ArmSpec("Base", "SwinBaseTrainer", "3d_cubic", True),
    "TA": ArmSpec("TA", "SwinTATrainer", "3d_cubic", True),
    "ACT": ArmSpec("ACT", "SwinACTTrainer", "3d_fullres", True),
    "Scratch": ArmSpec("Scratch", "SwinScratchTrainer", "3d_fullres", False),
    # the paper's future work: the full cubic field of view, padding tokens excluded from attention
    "Masked": ArmSpec("Masked", "SwinMaskedTrainer", "3d_cubic", True),
    # the crop without tumour-aware augmentation: ACT against it is TA's effect at the ACT crop
    "ACT-noTA": ArmSpec("ACT-noTA", "SwinACTNoTATrainer", "3d_fullres", True),
    # ACT with seed 1 instead of 0: the negative control (training noise)
    "ACT-rep": ArmSpec("ACT-rep", "SwinACTRepTrainer", "3d_fullres", True),
    # a CNN planned and trained by stock nnU-Net (its plans, its trainer at the arms' steps), same folds
    "CNN": ArmSpec("CNN", "nnUNetTrainer", "3d_fullres", False, planner=DEFAULT_CNN_PLANNER,
                   paper_suffix="_recipe"),
}


@dataclass(frozen=True)
class Preset:
    """Default arms and the trainer-name suffix of their short schedule; a ``synthetic`` preset makes its own dataset
    and pretrained encoder in ``OUTPUT/workspace``; step kinds in ``leaves_out`` are skipped, saying so."""

    arms: tuple[str, ...]
    suffix: str
    synthetic: bool = False
    leaves_out: tuple[str, ...] = ()


PRESETS = {
    "paper": Preset(("Base", "TA", "ACT", "Scratch"), ""),
    "smoke": Preset(("ACT", "Base"), "_smoke"),
    # the cheap 3d_fullres arms after Table 2's, the costly CNN and Masked last: an interrupted run has answered the
    # most families (Table 2, the negative control, Table 3, augmentation, subtypes) by then
    "demo": Preset(("Base", "TA", "ACT", "ACT-rep", "Scratch", "ACT-noTA", "B-only", "D-only", "CNN", "Masked"),
                   "_demo", synthetic=True),
    # `nnunet-swin demo`: one arm, fold 0, fine-tuned and evaluated in minutes on a CPU; no analysis of several arms
    "quickstart": Preset(("ACT",), "_quick", synthetic=True, leaves_out=("subtypes", "compare", "adi", "cka")),
}

# The demo cohort's z-extents (mm = voxels at the demo plans' 1 mm spacing) stand to its 64-voxel cubic crop as the
# paper's test cohort (median 93 [70-120] voxels, 78% padded, mean pf 0.27) stands to SMIT's 128: everything halved.
# With the synthetic default (median 90 mm) a 64^3 crop would pad almost no scan and the study could not show dilution.
DEMO_Z_EXTENTS = {"z_median_mm": 46.5, "z_iqr_mm": (35.0, 60.0), "short_mm": (15.0, 25.0), "z_clip_mm": (20.0, 85.0)}
# The powered demo study's data: the continuous appearance model (hidden subtype, overlapping contrast, edge and size),
# a quarter of the training cases dark, the test cases stratified by subtype x pf bin under the 64^3 cubic crop.
DEMO_SYNTHETIC = {**DEMO_Z_EXTENTS, "fov_mm": 64.0, "appearance": "continuous", "train_bright_share": 0.75,
                  "test_strata_crop": 64}
DEMO_TRAIN_CASES, DEMO_TEST_CASES = 32, 48
# the paper's [0, 1] MRI input, the range the demo encoder saw in its CT pretraining
DEMO_PLAN_ARGS = ["-inplane_patch", "64", "64", "-cubic_size", "64", "-c", "3d_fullres", "-normalization", "rescale01"]
# The CNN arm's stock ResEnc-M plans at a 1 GB memory target: patch 12x128x112 at nnU-Net's 3.2x0.49x0.49 mm, about
# the ACT crop's field of view (32x64x64 mm), batch 2. nnU-Net's default 8 GB target plans the whole 14x160x160 scan
# at batch 9, about 10x the ACT step on a CPU, which would not train in the demo's hours.
DEMO_CNN_PLAN_ARGS = ["-gpu_memory_target", "1"]
# the quickstart trains 3d_fullres only, on the synthetic default cohort (no cubic crop to pad)
QUICKSTART_PLAN_ARGS = ["-inplane_patch", "64", "64", "-c", "3d_fullres", "-normalization", "rescale01"]


def parse_arm(text: str) -> ArmSpec:
    """``Base`` / ``TA`` / ``ACT`` / ``ACT-noTA`` / ``ACT-rep`` / ``Scratch`` / ``Masked`` / ``CNN``, or a subtype arm
    ``B-only`` / ``only:B`` (stock ACT trainer)."""
    if text in PAPER_ARMS:
        return PAPER_ARMS[text]
    subtype = text[len("only:"):] if text.startswith("only:") else text[:-len("-only")] if text.endswith("-only") \
        else None
    if subtype:
        return ArmSpec(f"{subtype}-only", "SwinACTTrainer", "3d_fullres", True, subtype=subtype)
    raise UserError(f"unknown arm {text!r}; choose from {', '.join(PAPER_ARMS)}, or a subtype-restricted arm such as "
                    f"B-only, D-only, only:<subtype>")


def parse_arms(names: list[str] | None, preset: str, cnn_planner: str | None = None) -> list[ArmSpec]:
    """The arms asked for (default: the preset's), each once; ``cnn_planner`` replaces the CNN arm's planner."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    arms = [parse_arm(a) for a in (names or PRESETS[preset].arms)]
    if len({a.name for a in arms}) != len(arms):
        raise UserError(f"an arm is named twice in --arms {' '.join(names or [])}")
    if cnn_planner:
        stock_plans_name(cnn_planner)                        # a planner stock nnU-Net knows, or a one-line error
        arms = [dataclasses.replace(a, planner=cnn_planner) if a.planner else a for a in arms]
    return arms


@functools.lru_cache(maxsize=None)
def stock_plans_name(planner: str, lookup: bool = False) -> str:
    """The plans identifier a stock nnU-Net planner writes by default (its ``plans_name`` argument): from
    ``STOCK_PLANS``, else (or with ``lookup``) from the class found the way ``nnUNetv2_plan_and_preprocess -pl`` finds
    it (nnU-Net's own ``experiment_planning`` folder only; seconds)."""
    if planner in STOCK_PLANS and not lookup:
        return STOCK_PLANS[planner]
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    folder = Path(nnunetv2.__path__[0]) / "experiment_planning"
    cls = recursive_find_python_class(str(folder), planner, current_module="nnunetv2.experiment_planning")
    default = None if cls is None else inspect.signature(cls.__init__).parameters.get("plans_name")
    if default is None or not isinstance(default.default, str):
        raise UserError(f"--cnn-planner {planner!r} is not a stock nnU-Net planner with a plans identifier; give one "
                        f"such as nnUNetPlannerResEncM (default), nnUNetPlannerResEncL, nnUNetPlannerResEncXL or "
                        f"ExperimentPlanner")
    return default.default
