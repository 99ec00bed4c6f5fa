"""Every setting of a pretraining run, written once: ``PretrainConfig``'s fields carry their default and, in their
metadata, the command-line help (``nnunet-swin pretrain`` builds its options from them with
``nnunet_swin.cli.options.from_dataclass``); ``settings_for_run`` turns the options a user gave into the run's
configuration (a new run, or ``--continue`` of the one in the output folder) after every check that needs no writing.

Torch-free: ``nnunet-swin pretrain --help`` imports this module and neither torch nor the networks.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from nnunet_swin.errors import UserError

LATEST, FINAL = "checkpoint_latest.pth", "checkpoint_final.pth"
MASKINGS = ("smit", "ibot")
ENCODER_CHOICES = ("auto", "student", "teacher")
NOISE_KINDS = ("weights", "dropout", "none")
MODALITY_ALIASES = {"MRI": "MR", "T1": "MR", "T2": "MR"}
# what a --continue may change: how the run is saved and exported, not what it trains
CONTINUE_MAY_CHANGE = ("save_every", "num_workers", "encoder", "teacher_share_threshold")


def _opt(help: str, **argparse_keywords) -> dict:
    """A field's command-line metadata: its help (the default is appended from the field) and argparse keywords."""
    return {"help": help, **argparse_keywords}


@dataclass
class PretrainConfig:
    """Every setting of a pretraining run (defaults: SMIT's public script per the reference; SMART's unverified
    choices marked). Stored in the checkpoint; ``--continue`` reads it back."""
    method: str = field(default="smit", metadata=_opt(
        "pretraining method: smit or smart (one file per method in nnunet_swin/pretraining/methods)"))
    backbone: str = field(default="smit", metadata=_opt(
        "encoder preset, e.g. smit or swin_unetr (nnunet_swin/networks/presets.py)", flags=("-backbone", "--backbone")))
    modality: str = field(default="CT", metadata=_opt(
        "CT (HU window -> [0, 1]) or MR (per-image percentile clip -> [0, 1])",
        default_text="from the channel name of -d's dataset when it says CT or MR; else required"))
    spacing: tuple = field(default=(1.0, 1.0, 1.0), metadata=_opt(        # (z, y, x) mm
        "target spacing in mm, the backbone's pretraining spacing", type=float, nargs=3, metavar=("Z", "Y", "X")))
    hu_window: tuple = field(default=(-175.0, 250.0), metadata=_opt(
        "CT window in HU (SMIT's)", type=float, nargs=2, metavar=("LOW", "HIGH")))
    mr_percentile: float = field(default=99.0, metadata=_opt("MR upper clip percentile"))
    epochs: int = field(default=500, metadata=_opt("epochs"))
    iterations_per_epoch: int = field(default=250, metadata=_opt("steps per epoch"))
    batch_size: int = field(default=2, metadata=_opt("volumes per step and rank, two views each"))
    crop: int | None = field(default=None, metadata=_opt(
        "view side in voxels", type=int, default_text="the preset's input size"))
    region_scale: float = 4 / 3                    # both views come from one region of this many crop sides (128/96)
    # optimisation
    lr_per_sample: float = field(default=1e-4, metadata=_opt(       # SMIT: 1e-4 x 6
        "peak lr per volume of the global batch", default_text="1e-4"))
    min_lr: float = 1e-6
    warmup_epochs: int = field(default=20, metadata=_opt("learning-rate warmup epochs"))
    # [unverified for SMIT] iBOT/DINO's starting value; no decay on what the model's no_weight_decay() names
    weight_decay: float = field(default=0.04, metadata=_opt("AdamW weight decay"))
    clip_grad: float = field(default=3.0, metadata=_opt("gradient-norm clipping, 0 = off"))
    freeze_last_layer_epochs: int = field(default=1, metadata=_opt(
        "epochs the heads' prototype layers get no gradient"))
    drop_path: float = field(default=0.3, metadata=_opt("student stochastic depth"))   # the teacher runs in eval mode
    # masking, heads, distillation
    masking: str = field(default="smit", metadata=_opt(
        "smit: every view masked at --mask-ratio; ibot: half the views unmasked, the others at a ratio drawn from "
        "--ibot-ratio", choices=MASKINGS))
    mask_block: int = field(default=16, metadata=_opt("mask block side in voxels"))
    mask_ratio: float = field(default=0.7, metadata=_opt("share of masked blocks"))
    ibot_ratio: tuple = field(default=(0.3, 0.2), metadata=_opt(
        "iBOT masking: ratio drawn from [RATIO - VAR, RATIO + VAR]", type=float, nargs=2, metavar=("RATIO", "VAR")))
    ibot_unmasked_share: float = field(default=0.5, metadata=_opt("iBOT masking: unmasked views"))
    out_dim: int = field(default=8192, metadata=_opt("prototypes of the projection heads"))
    head_hidden: int = field(default=2048, metadata=_opt("hidden width of the projection heads"))
    head_bottleneck: int = field(default=256, metadata=_opt("bottleneck of the projection heads"))
    student_temp: float = field(default=0.1, metadata=_opt("student temperature"))
    teacher_temp: tuple = field(default=(0.04, 0.07), metadata=_opt(
        "teacher temperature ramp", type=float, nargs=2, metavar=("START", "END")))
    teacher_temp_warmup_epochs: int = field(default=30, metadata=_opt(
        "epochs of the global teacher-temperature ramp"))
    patch_temp_delay_epochs: int = field(default=30, metadata=_opt(
        "epochs the patch teacher temperature is held at START"))
    patch_temp_warmup_epochs: int = field(default=30, metadata=_opt(
        "epochs of the patch teacher-temperature ramp after the delay"))
    ramp_scaling: bool = field(default=True, metadata=_opt(    # scale every ramp by epochs / 500 in a shorter run
        "keep the ramps as given even when the run is shorter than them", flags=("--no-ramp-scaling",)))
    centre_momentum: float = field(default=0.9, metadata=_opt("momentum of the teacher centres"))
    teacher_momentum: float = field(default=0.996, metadata=_opt(
        "EMA teacher momentum at step 0, cosine to 1 at the end"))
    w_mip: float = field(default=1.0, metadata=_opt("weight of masked-voxel L1 reconstruction"))
    w_mpd: float = field(default=0.1, metadata=_opt("weight of masked patch-token distillation"))
    w_itd: float = field(default=0.1, metadata=_opt("weight of cross-view global-token distillation"))
    # which encoder the checkpoint exports (see nnunet_swin.pretraining.trainer's docstring)
    encoder: str = field(default="auto", metadata=_opt(
        "which encoder the checkpoint exports for fine-tuning: auto = the student while the EMA teacher still holds "
        "more than --teacher-share-threshold of its initialisation, else the teacher", choices=ENCODER_CHOICES))
    teacher_share_threshold: float = field(default=0.05, metadata=_opt(
        "auto export: the teacher's remaining share of its initialisation above which the student is exported"))
    # SMART (every choice [unverified]; see the README section "Pretraining your own encoder")
    w_ctd: float = field(default=0.1, metadata=_opt("SMART: weight of class-token distillation"))
    guided_masking: bool = field(default=True, metadata=_opt(   # False: random blocks, as SMIT
        "SMART: random masks instead of attention-guided ones", flags=("--no-guided-masking",)))
    random_share: float = field(default=0.5, metadata=_opt(
        "SMART: share of masked blocks drawn at random, the rest are the most attended"))
    teacher_noise: str = field(default="weights", metadata=_opt(
        "SMART: noisy teacher by Gaussian weight noise, feature dropout, or none", choices=NOISE_KINDS))
    teacher_noise_std: float = field(default=0.01, metadata=_opt(
        "SMART: relative weight-noise std, or the dropout probability"))
    class_attention_heads: int | None = field(default=None, metadata=_opt(
        "SMART: heads of the class attention", type=int, default_text="the last stage's"))
    norm_class_query: bool = field(default=True, metadata=_opt(
        "SMART: layer-normalise the class token before the query projection (CaiT)",
        action=argparse.BooleanOptionalAction))
    # run
    seed: int = field(default=0, metadata=_opt("random seed"))
    save_every: int = field(default=10, metadata=_opt("write checkpoint_latest.pth every N epochs"))
    num_workers: int = field(default=2, metadata=_opt("data-loader worker processes"))

    def validate(self) -> "PretrainConfig":
        from nnunet_swin.networks.presets import get_preset
        from nnunet_swin.pretraining.methods import METHODS

        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}; use --method " + " or --method ".join(METHODS))
        preset = get_preset(self.backbone)
        self.intensity()
        if self.teacher_noise not in NOISE_KINDS:
            raise UserError(f"unknown teacher noise {self.teacher_noise!r}; choose one of {', '.join(NOISE_KINDS)}")
        if self.crop is None:
            self.crop = int(preset["pretrained_input_size"][0])
        divisor = preset["patch_size"][0] * 2 ** len(preset["depths"])
        step = math.lcm(divisor, self.mask_block)
        if self.crop <= 0 or self.crop % step:
            raise UserError(f"--crop {self.crop} must be a positive multiple of {step} (the {self.backbone} encoder "
                            f"halves {len(preset['depths'])} times after a patch of {int(preset['patch_size'][0])}, "
                            f"and the mask block is {self.mask_block}); e.g. "
                            f"--crop {int(max(step, self.crop // step * step))}")
        if self.mask_block % preset["patch_size"][0]:
            raise UserError(f"--mask-block {self.mask_block} must be a multiple of the patch size "
                            f"{int(preset['patch_size'][0])}")
        for name in ("epochs", "iterations_per_epoch", "batch_size", "save_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise UserError(f"--mask-ratio must be in (0, 1), got {self.mask_ratio}")
        self._check_training_values()
        if len(self.spacing) != 3 or min(self.spacing) <= 0:
            raise UserError(f"--spacing needs three positive values (z y x mm), got {list(self.spacing)}")
        return self

    def _check_training_values(self) -> None:
        """One-line errors for values the optimisation cannot use (the flag's name, the value, the valid range)."""
        def bad(flag, value, rule):
            raise UserError(f"--{flag} must be {rule}, got {_plain(value)}")
        if self.masking not in MASKINGS:
            bad("masking", self.masking, f"one of {', '.join(MASKINGS)}")
        if self.encoder not in ENCODER_CHOICES:
            bad("encoder", self.encoder, f"one of {', '.join(ENCODER_CHOICES)}")
        if not (math.isfinite(self.student_temp) and self.student_temp > 0):
            bad("student-temp", self.student_temp, "a positive number (SMIT: 0.1)")
        if len(self.teacher_temp) != 2 or not all(math.isfinite(t) and t > 0 for t in self.teacher_temp):
            bad("teacher-temp", list(self.teacher_temp), "two positive numbers START END (SMIT: 0.04 0.07)")
        for flag, value in (("teacher-momentum", self.teacher_momentum), ("centre-momentum", self.centre_momentum),
                            ("teacher-share-threshold", self.teacher_share_threshold),
                            ("ibot-unmasked-share", self.ibot_unmasked_share), ("random-share", self.random_share)):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                bad(flag, value, "between 0 and 1")
        for flag, value in (("teacher-temp-warmup-epochs", self.teacher_temp_warmup_epochs),
                            ("patch-temp-delay-epochs", self.patch_temp_delay_epochs),
                            ("patch-temp-warmup-epochs", self.patch_temp_warmup_epochs),
                            ("freeze-last-layer-epochs", self.freeze_last_layer_epochs),
                            ("warmup-epochs", self.warmup_epochs)):
            if value < 0:
                bad(flag, value, "0 or more")
        for flag, value in (("weight-decay", self.weight_decay), ("clip-grad", self.clip_grad),
                            ("drop-path", self.drop_path), ("teacher-noise-std", self.teacher_noise_std),
                            ("w-mip", self.w_mip), ("w-mpd", self.w_mpd), ("w-itd", self.w_itd),
                            ("w-ctd", self.w_ctd)):
            if not (math.isfinite(value) and value >= 0):
                bad(flag, value, "a number >= 0 (0 turns it off)")
        if not (math.isfinite(self.lr_per_sample) and self.lr_per_sample > 0):
            bad("lr-per-sample", self.lr_per_sample, "a positive number (SMIT: 1e-4)")
        lo, var = self.ibot_ratio
        if not (0.0 < lo - var and lo + var < 1.0):
            bad("ibot-ratio", list(self.ibot_ratio), "RATIO VAR with 0 < RATIO - VAR and RATIO + VAR < 1 (iBOT: 0.3 0.2)")
        if self.drop_path >= 1:
            bad("drop-path", self.drop_path, "below 1")

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        names = {f.name for f in fields(cls)}
        cfg = cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})
        if "ramp_scaling" not in d:        # a run written before ramp scaling existed keeps its schedules
            cfg.ramp_scaling = False
        if "norm_class_query" not in d:    # ... and its class attention without the query norm
            cfg.norm_class_query = False
        return cfg

    def intensity(self):
        """The ``IntensityScheme`` of this run (``UserError`` on a bad modality, window or percentile)."""
        from nnunet_swin.pretraining.data import IntensityScheme
        return IntensityScheme(self.modality, tuple(self.hu_window), self.mr_percentile)


def _plain(value):
    """Numbers as a user typed them (no ``np.int64(8)`` in messages)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def read_run_config(path: Path) -> PretrainConfig:
    """The configuration stored in a pretraining checkpoint (``UserError`` if it is not one)."""
    from nnunet_swin.networks.weights import read_checkpoint
    obj = read_checkpoint(path)
    if not (isinstance(obj, dict) and isinstance(obj.get("pretraining"), dict) and "config" in obj["pretraining"]):
        raise UserError(f"{path} is not a checkpoint of `nnunet-swin pretrain`; cannot continue from it")
    return PretrainConfig.from_dict(obj["pretraining"]["config"])


def check_output_folder(out: Path) -> None:
    """Up front, before any work: ``-o`` must be a folder (or not exist yet) we can write into."""
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file, not a folder; choose a folder for the checkpoints, log and cache")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into {probe} (permission denied); choose an output folder (-o) you can "
                        "write to")


def settings_for_run(output: str | Path, given: dict, images_folder: str | None = None, dataset: str | None = None,
                     resume: bool = False) -> tuple[PretrainConfig, list[Path], bool]:
    """``(config, images, resume)`` for a run into ``output`` after every check that needs no writing.

    ``given``: the ``PretrainConfig`` fields the user set (options not given are absent). A new run takes them over
    the defaults (the modality, when not given, from the dataset's channel name); ``resume`` continues the run in
    ``output`` with its stored configuration, where only ``CONTINUE_MAY_CHANGE`` may differ. ``UserError`` on bad
    input."""
    from nnunet_swin.pretraining.data import MODALITIES, discover_images

    out = Path(output).expanduser()
    check_output_folder(out)
    given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in given.items()}
    if "modality" in given:
        raw = given["modality"]
        given["modality"] = MODALITY_ALIASES.get(str(raw).upper(), str(raw).upper())
        if given["modality"] not in MODALITIES:
            raise UserError(f"unknown modality {raw!r}; use --modality CT or --modality MR")
    if (out / FINAL).is_file():
        raise UserError(f"{out} already holds a finished run ({FINAL}); choose another output folder (-o) or "
                        "remove that folder to start again")
    if images_folder is None and dataset is None:
        raise UserError("give the images with -i FOLDER or -d DATASET_ID")
    images, dataset_modality = discover_images(images_folder, dataset)
    if resume:
        if not (out / LATEST).is_file():
            raise UserError(f"--continue: {out} has no {LATEST} to continue from; run without --continue to start")
        saved = read_run_config(out / LATEST)
        for name, value in given.items():
            if name not in CONTINUE_MAY_CHANGE and value != getattr(saved, name):
                raise UserError(f"--continue: {out} holds a run with {name} {getattr(saved, name)!r}, not "
                                f"{value!r}; drop the option to continue that run, or use another output folder "
                                f"for a different {name}")
        kept = {f.name: getattr(saved, f.name) for f in fields(PretrainConfig)}
        kept.update({k: v for k, v in given.items() if k in CONTINUE_MAY_CHANGE})
        return PretrainConfig(**kept).validate(), images, True
    if (out / LATEST).is_file():
        raise UserError(f"{out} holds an unfinished run ({LATEST}); pass --continue to resume it or choose another "
                        "output folder")
    if "modality" not in given:
        if dataset_modality is None:
            raise UserError("say what the images are: --modality CT or --modality MR")
        given["modality"] = dataset_modality
    return PretrainConfig(**given).validate(), images, False
