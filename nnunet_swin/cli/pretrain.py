"""`nnunet-swin pretrain`: self-supervised pretraining (SMIT or SMART) of a Swin encoder on your own unlabeled scans.

Writes checkpoint_latest.pth (every --save-every epochs), checkpoint_final.pth (what `export
nnUNet_swin_pretrained=...` points the fine-tuning trainers at), pretrain_log.txt, losses.json, loss_curve.png and
the preprocessed cache/ into the output folder. Data-parallel with `torchrun --nproc_per_node N -m nnunet_swin
pretrain ...`.
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import fields
from pathlib import Path

from nnunet_swin.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from nnunet_swin.networks.presets import PRESETS
    from nnunet_swin.cli import options
    p = argparse.ArgumentParser(prog="nnunet-swin pretrain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[options.device(), options.progress()])
    src = p.add_mutually_exclusive_group()
    src.add_argument("-i", "--input", help="folder of images (any format nnU-Net reads; labels are not needed)")
    src.add_argument("-d", "--dataset", help="nnU-Net raw dataset id or name (imagesTr + imagesTs; labels ignored)")
    p.add_argument("-o", "--output", required=True, help="output folder (checkpoints, log, cache)")
    from nnunet_swin.pretraining.methods import METHODS
    p.add_argument("--method", choices=list(METHODS), default=None, help="SMIT (default) or SMART")
    p.add_argument("-backbone", "--backbone", choices=list(PRESETS), default=None, help="encoder preset (default smit)")
    p.add_argument("--modality", default=None,
                   help="CT (HU window -> [0, 1]) or MR (per-image percentile clip -> [0, 1]); with -d the "
                        "dataset's channel name is used when it says CT or MR")
    p.add_argument("--continue", dest="resume", action="store_true",
                   help="resume the run in the output folder exactly where its last checkpoint left it")
    p.add_argument("--epochs", type=int, default=None, help="default 500")
    p.add_argument("--iterations-per-epoch", type=int, default=None, help="default 250")
    p.add_argument("--crop", type=int, default=None, help="view side in voxels (default: the preset's input size)")
    p.add_argument("--batch-size", type=int, default=None, help="volumes per step and rank, two views each (default 2)")
    p.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("Z", "Y", "X"),
                   help="target spacing in mm (default 1 1 1, the backbone's pretraining spacing)")
    p.add_argument("--hu-window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="CT window in HU (default -175 250, SMIT's)")
    p.add_argument("--mr-percentile", type=float, default=None, help="MR upper clip percentile (default 99)")
    p.add_argument("--save-every", type=int, default=None, help="write checkpoint_latest.pth every N epochs (10)")
    p.add_argument("--num-workers", type=int, default=None, help="data-loader worker processes (default 2)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable, 2D or too small images (named in the log) instead of stopping")
    g = p.add_argument_group("method options (defaults: SMIT's public script; SMART's are unverified choices)")
    g.add_argument("--mask-ratio", type=float, default=None, help="share of masked blocks (0.7)")
    g.add_argument("--mask-block", type=int, default=None, help="mask block side in voxels (16)")
    g.add_argument("--w-mip", type=float, default=None, help="weight of masked-voxel L1 reconstruction (1.0)")
    g.add_argument("--w-mpd", type=float, default=None, help="weight of masked patch-token distillation (0.1)")
    g.add_argument("--w-itd", type=float, default=None, help="weight of cross-view global-token distillation (0.1)")
    g.add_argument("--w-ctd", type=float, default=None, help="SMART: weight of class-token distillation (0.1)")
    g.add_argument("--lr-per-sample", type=float, default=None, help="peak lr per volume of the global batch (1e-4)")
    g.add_argument("--warmup-epochs", type=int, default=None, help="learning-rate warmup epochs (20)")
    g.add_argument("--out-dim", type=int, default=None, help="prototypes of the projection heads (8192)")
    g.add_argument("--head-hidden", type=int, default=None, help="hidden width of the projection heads (2048)")
    g.add_argument("--head-bottleneck", type=int, default=None, help="bottleneck of the projection heads (256)")
    g.add_argument("--drop-path", type=float, default=None, help="student stochastic depth (0.3)")
    g.add_argument("--random-share", type=float, default=None,
                   help="SMART: share of masked blocks drawn at random, the rest are the most attended (0.5)")
    g.add_argument("--no-guided-masking", dest="guided_masking", action="store_const", const=False, default=None,
                   help="SMART: random masks instead of attention-guided ones")
    g.add_argument("--teacher-noise", choices=["weights", "dropout", "none"], default=None,
                   help="SMART: noisy teacher by Gaussian weight noise (default), feature dropout, or none")
    g.add_argument("--teacher-noise-std", type=float, default=None,
                   help="SMART: relative weight-noise std, or the dropout probability (0.01)")
    g.add_argument("--class-attention-heads", type=int, default=None,
                   help="SMART: heads of the class attention (default: the last stage's)")
    g.add_argument("--norm-class-query", dest="norm_class_query", action=argparse.BooleanOptionalAction,
                   default=None, help="SMART: layer-normalise the class token before the query projection (CaiT; "
                                      "default on)")
    g.add_argument("--seed", type=int, default=None, help="random seed (0)")
    d = p.add_argument_group("distillation and optimisation (defaults: SMIT's public script; every ramp is scaled "
                             "to a run shorter than it, see --no-ramp-scaling)")
    d.add_argument("--masking", choices=["smit", "ibot"], default=None,
                   help="smit: every view masked at --mask-ratio (default); ibot: half the views unmasked, the "
                        "others at a ratio drawn from --ibot-ratio")
    d.add_argument("--ibot-ratio", type=float, nargs=2, default=None, metavar=("RATIO", "VAR"),
                   help="iBOT masking: ratio drawn from [RATIO - VAR, RATIO + VAR] (0.3 0.2)")
    d.add_argument("--ibot-unmasked-share", type=float, default=None, help="iBOT masking: unmasked views (0.5)")
    d.add_argument("--student-temp", type=float, default=None, help="student temperature (0.1)")
    d.add_argument("--teacher-temp", type=float, nargs=2, default=None, metavar=("START", "END"),
                   help="teacher temperature ramp (0.04 0.07)")
    d.add_argument("--teacher-temp-warmup-epochs", type=int, default=None,
                   help="epochs of the global teacher-temperature ramp (30)")
    d.add_argument("--patch-temp-delay-epochs", type=int, default=None,
                   help="epochs the patch teacher temperature is held at START (30)")
    d.add_argument("--patch-temp-warmup-epochs", type=int, default=None,
                   help="epochs of the patch teacher-temperature ramp after the delay (30)")
    d.add_argument("--no-ramp-scaling", dest="ramp_scaling", action="store_const", const=False, default=None,
                   help="keep the ramps as given even when the run is shorter than them")
    d.add_argument("--freeze-last-layer-epochs", type=int, default=None,
                   help="epochs the heads' prototype layers get no gradient (1)")
    d.add_argument("--teacher-momentum", type=float, default=None,
                   help="EMA teacher momentum at step 0, cosine to 1 at the end (0.996)")
    d.add_argument("--centre-momentum", type=float, default=None, help="momentum of the teacher centres (0.9)")
    d.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (0.04)")
    d.add_argument("--clip-grad", type=float, default=None, help="gradient-norm clipping, 0 = off (3.0)")
    d.add_argument("--encoder", choices=["auto", "student", "teacher"], default=None,
                   help="which encoder the checkpoint exports for fine-tuning: auto (default) = the student while "
                        "the EMA teacher still holds more than --teacher-share-threshold of its initialisation, "
                        "else the teacher")
    d.add_argument("--teacher-share-threshold", type=float, default=None,
                   help="auto export: the teacher's remaining share of its initialisation above which the student "
                        "is exported (0.05)")
    return p


# CLI destination -> PretrainConfig field
_FIELDS = {"method": "method", "backbone": "backbone", "modality": "modality", "epochs": "epochs",
           "iterations_per_epoch": "iterations_per_epoch", "crop": "crop", "batch_size": "batch_size",
           "spacing": "spacing", "hu_window": "hu_window", "mr_percentile": "mr_percentile",
           "save_every": "save_every", "num_workers": "num_workers", "mask_ratio": "mask_ratio",
           "mask_block": "mask_block", "w_mip": "w_mip", "w_mpd": "w_mpd", "w_itd": "w_itd", "w_ctd": "w_ctd",
           "lr_per_sample": "lr_per_sample", "warmup_epochs": "warmup_epochs", "out_dim": "out_dim", "head_hidden": "head_hidden", "head_bottleneck": "head_bottleneck",
           "drop_path": "drop_path", "random_share": "random_share", "guided_masking": "guided_masking",
           "teacher_noise": "teacher_noise", "teacher_noise_std": "teacher_noise_std", "seed": "seed",
           "class_attention_heads": "class_attention_heads", "norm_class_query": "norm_class_query",
           "masking": "masking", "ibot_ratio": "ibot_ratio", "ibot_unmasked_share": "ibot_unmasked_share",
           "student_temp": "student_temp", "teacher_temp": "teacher_temp",
           "teacher_temp_warmup_epochs": "teacher_temp_warmup_epochs",
           "patch_temp_delay_epochs": "patch_temp_delay_epochs", "patch_temp_warmup_epochs": "patch_temp_warmup_epochs",
           "ramp_scaling": "ramp_scaling", "freeze_last_layer_epochs": "freeze_last_layer_epochs",
           "teacher_momentum": "teacher_momentum", "centre_momentum": "centre_momentum",
           "weight_decay": "weight_decay", "clip_grad": "clip_grad", "encoder": "encoder",
           "teacher_share_threshold": "teacher_share_threshold"}
# options a --continue may change: how the run is saved and exported, not what it trains
_CONTINUE_MAY_CHANGE = ("save_every", "num_workers", "encoder", "teacher_share_threshold")


def _given(args) -> dict:
    out = {}
    for dest, name in _FIELDS.items():
        value = getattr(args, dest)
        if value is not None:
            out[name] = tuple(value) if isinstance(value, list) else value
    if "modality" in out:
        m = str(out["modality"]).upper()
        out["modality"] = {"MRI": "MR", "T1": "MR", "T2": "MR"}.get(m, m)
    return out


def _check_output_folder(out: Path) -> None:
    """Up front, before any work: ``-o`` must be a folder (or not exist yet) we can write into."""
    import os
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file, not a folder; choose a folder for the checkpoints, log and cache")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into {probe} (permission denied); choose an output folder (-o) you can "
                        "write to")


def resolve(args) -> tuple:
    """(config, images, resume) after every check that needs no writing; ``UserError`` on bad input."""
    from nnunet_swin.pretraining.data import MODALITIES, discover_images
    from nnunet_swin.pretraining.trainer import FINAL, LATEST, PretrainConfig, read_run_config

    out = Path(args.output).expanduser()
    _check_output_folder(out)
    given = _given(args)
    if "modality" in given and given["modality"] not in MODALITIES:
        raise UserError(f"unknown modality {args.modality!r}; use --modality CT or --modality MR")
    if (out / FINAL).is_file():
        raise UserError(f"{out} already holds a finished run ({FINAL}); choose another output folder (-o) or "
                        "remove that folder to start again")
    if args.input is None and args.dataset is None:
        raise UserError("give the images with -i FOLDER or -d DATASET_ID")
    images, dataset_modality = discover_images(args.input, args.dataset)
    if args.resume:
        if not (out / LATEST).is_file():
            raise UserError(f"--continue: {out} has no {LATEST} to continue from; run without --continue to start")
        saved = read_run_config(out / LATEST)
        for name, value in given.items():
            if name not in _CONTINUE_MAY_CHANGE and value != getattr(saved, name):
                raise UserError(f"--continue: {out} holds a run with {name} {getattr(saved, name)!r}, not "
                                f"{value!r}; drop the option to continue that run, or use another output folder "
                                f"for a different {name}")
        kept = {f.name: getattr(saved, f.name) for f in fields(PretrainConfig)}
        kept.update({k: v for k, v in given.items() if k in _CONTINUE_MAY_CHANGE})
        return PretrainConfig(**kept).validate(), images, True
    if (out / LATEST).is_file():
        raise UserError(f"{out} holds an unfinished run ({LATEST}); pass --continue to resume it or choose another "
                        "output folder")
    if "modality" not in given:
        if dataset_modality is None:
            raise UserError("say what the images are: --modality CT or --modality MR")
        given["modality"] = dataset_modality
    return PretrainConfig(**given).validate(), images, False


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    config, images, resume = resolve(args)
    from nnunet_swin.pretraining.trainer import Pretrainer
    out = Path(args.output).expanduser()
    created = not out.exists()
    from nnunet_swin.device import resolve_device
    device = resolve_device(args.device)
    trainer = Pretrainer(config, out, images, device=device, resume=resume, progress=not args.quiet)
    trainer.skip_bad = args.skip_bad
    try:
        trainer.setup()
    except UserError:
        if created and trainer.world.main and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise
    trainer.run()
    from nnunet_swin.pretraining import distributed as D
    D.shutdown(trainer.world)
    return 0
