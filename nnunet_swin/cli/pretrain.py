"""`nnunet-swin pretrain`: self-supervised pretraining (SMIT or SMART) of a Swin encoder on your own unlabeled scans.

Writes checkpoint_latest.pth (every --save-every epochs), checkpoint_final.pth (what `export
nnUNet_swin_pretrained=...` points the fine-tuning trainers at), pretrain_log.txt, losses.json, loss_curve.png and
the preprocessed cache/ into the output folder. Data-parallel with `torchrun --nproc_per_node N -m nnunet_swin
pretrain ...`.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from nnunet_swin.cli import options
from nnunet_swin.errors import UserError

# PretrainConfig fields as options (help and default on the fields), in the groups of --help
RUN = ("method", "backbone", "modality", "epochs", "iterations_per_epoch", "crop", "batch_size", "spacing",
       "hu_window", "mr_percentile", "save_every", "num_workers")
METHOD = ("mask_ratio", "mask_block", "w_mip", "w_mpd", "w_itd", "w_ctd", "lr_per_sample", "warmup_epochs",
          "out_dim", "head_hidden", "head_bottleneck", "drop_path", "random_share", "guided_masking", "teacher_noise",
          "teacher_noise_std", "class_attention_heads", "norm_class_query", "seed")
DISTILLATION = ("masking", "ibot_ratio", "ibot_unmasked_share", "student_temp", "teacher_temp",
                "teacher_temp_warmup_epochs", "patch_temp_delay_epochs", "patch_temp_warmup_epochs", "ramp_scaling",
                "freeze_last_layer_epochs", "teacher_momentum", "centre_momentum", "weight_decay", "clip_grad",
                "encoder", "teacher_share_threshold")


def build_parser() -> argparse.ArgumentParser:
    """The options; those of the run's configuration are left out of the namespace unless given (``--continue``
    changes a stored run only where the user said so)."""
    from nnunet_swin.pretraining.settings import PretrainConfig
    p = argparse.ArgumentParser(prog="nnunet-swin pretrain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[options.device(), options.progress()])
    src = p.add_mutually_exclusive_group()
    src.add_argument("-i", "--input", help="folder of images (any format nnU-Net reads; labels are not needed)")
    src.add_argument("-d", "--dataset", help="nnU-Net raw dataset id or name (imagesTr + imagesTs; labels ignored)")
    p.add_argument("-o", "--output", required=True, help="output folder (checkpoints, log, cache)")
    p.add_argument("--continue", dest="resume", action="store_true",
                   help="resume the run in the output folder exactly where its last checkpoint left it")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable, 2D or too small images (named in the log) instead of stopping")
    options.from_dataclass(p, PretrainConfig, *RUN, only_given=True)
    g = p.add_argument_group("method options (defaults: SMIT's public script; SMART's are unverified choices)")
    options.from_dataclass(g, PretrainConfig, *METHOD, only_given=True)
    d = p.add_argument_group("distillation and optimisation (defaults: SMIT's public script; every ramp is scaled "
                             "to a run shorter than it, see --no-ramp-scaling)")
    options.from_dataclass(d, PretrainConfig, *DISTILLATION, only_given=True)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nnunet_swin.pretraining.settings import PretrainConfig, settings_for_run
    config, images, resume = settings_for_run(args.output, options.given(args, PretrainConfig), args.input,
                                              args.dataset, args.resume)
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
