"""The study's arms and presets: which stock trainer runs on which configuration, and the short-schedule suffix a
preset adds (``trainers.short_variants``)."""
from __future__ import annotations

from dataclasses import dataclass

from nnunet_swin.errors import UserError

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
    "demo": Preset(("Base", "TA", "ACT", "Scratch", "Masked", "B-only", "D-only"), "_demo", synthetic=True),
    # `nnunet-swin demo`: one arm, fold 0, fine-tuned and evaluated in minutes on a CPU; no analysis of several arms
    "quickstart": Preset(("ACT",), "_demo", synthetic=True, leaves_out=("subtypes", "compare", "adi", "cka")),
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
# the quickstart trains 3d_fullres only, on the synthetic default cohort (no cubic crop to pad)
QUICKSTART_PLAN_ARGS = ["-inplane_patch", "64", "64", "-c", "3d_fullres", "-normalization", "rescale01"]


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


def parse_arms(names: list[str] | None, preset: str) -> list[ArmSpec]:
    """The arms asked for (default: the preset's), each once."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    arms = [parse_arm(a) for a in (names or PRESETS[preset].arms)]
    if len({a.name for a in arms}) != len(arms):
        raise UserError(f"an arm is named twice in --arms {' '.join(names or [])}")
    return arms
