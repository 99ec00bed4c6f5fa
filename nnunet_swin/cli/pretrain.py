"""`nnunet-swin pretrain`: self-supervised pretraining (SMIT or SMART) of a Swin encoder on your own unlabeled scans.

Writes checkpoint_latest.pth (every --save-every epochs), checkpoint_final.pth (what `export
nnUNet_swin_pretrained=...` points the fine-tuning trainers at), pretrain_log.txt, losses.json, loss_curve.png and
the preprocessed cache/ into the output folder. Data-parallel on one machine with `torchrun --nproc_per_node N -m
nnunet_swin pretrain ...`; on a SLURM cluster with `--executor slurm --nodes N --gpus-per-node G` (one task per GPU,
ranks from submitit; a job that hits its time limit is requeued and continues as --continue does).
"""
from __future__ import annotations

import argparse

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
    c = p.add_argument_group("where it runs (--executor slurm: one SLURM job across the allocation, DDP with one "
                             "task per GPU)")
    c.add_argument("--executor", default="local",
                   help="local: this process (default; several processes: torchrun); slurm: one job through submitit")
    c.add_argument("--nodes", type=int, default=1, help="slurm: nodes (default 1)")
    c.add_argument("--gpus-per-node", type=int, default=None,
                   help="slurm: GPUs per node, one task each (default 1; 0 with --device cpu or --tasks-per-node: a CPU "
                        "cluster, gloo)")
    c.add_argument("--tasks-per-node", type=int, default=None,
                   help="slurm: processes per node on a CPU cluster (no GPUs; default 1)")
    c.add_argument("--slurm-cpus-per-task", type=int, default=None, help="slurm: CPUs per task (default: the cluster's)")
    options.slurm_flags(c, "continues from its last checkpoint (as --continue)",
                        "submit the job and return (its id, state and log path are printed)")
    return p


SLURM_FLAGS = ("nodes", "gpus_per_node", "tasks_per_node", "slurm_cpus_per_task", "slurm_partition", "slurm_mem",
               "slurm_sbatch", "no_wait")


def _gpus(args: argparse.Namespace) -> int:
    """GPUs per node: as given; else none for a CPU run (--tasks-per-node or --device cpu), else 1."""
    if args.gpus_per_node is not None:
        return args.gpus_per_node
    return 0 if args.tasks_per_node is not None or args.device == "cpu" else 1


def slurm_options(args: argparse.Namespace):
    """The job's allocation from the options (one-line errors on bad values)."""
    from nnunet_swin.cluster import SlurmOptions, parse_mem_gb, parse_sbatch_options, parse_time
    gpus = _gpus(args)
    tasks = args.tasks_per_node if args.tasks_per_node is not None else (gpus or 1)
    return SlurmOptions(partition=args.slurm_partition, time_min=parse_time(args.slurm_time), nodes=args.nodes,
                        gpus_per_node=gpus, tasks_per_node=tasks, cpus_per_task=args.slurm_cpus_per_task,
                        mem_gb=parse_mem_gb(args.slurm_mem), extra=parse_sbatch_options(args.slurm_sbatch),
                        wait=not args.no_wait)


def check_executor_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The executor and its flags agree (one line each, before any work)."""
    from nnunet_swin.cluster import check_executor
    check_executor(args.executor)
    if args.executor == "local":
        given = [f for f in SLURM_FLAGS if getattr(args, f) != parser.get_default(f)]
        given += ["slurm_time"] if args.slurm_time != parser.get_default("slurm_time") else []
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} is for --executor slurm; add --executor slurm, or, on "
                            f"this machine, run several processes with `torchrun --nproc_per_node N -m nnunet_swin "
                            f"pretrain ...`")
        return
    gpus = _gpus(args)
    if args.device not in ("auto", "cuda" if gpus else "cpu"):
        raise UserError(f"--device {args.device} with --gpus-per-node {gpus}: on SLURM the device follows the "
                        f"allocation ({'cuda, one GPU per task' if gpus else 'cpu'}); drop --device")


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_executor_flags(args, parser)
    from nnunet_swin.pretraining.job import RunRequest
    from nnunet_swin.pretraining.settings import PretrainConfig
    device = args.device
    if args.executor == "slurm":
        options_ = slurm_options(args)
        device = "cuda" if options_.gpus_per_node else "cpu"
    request = RunRequest(output=args.output, given=options.given(args, PretrainConfig), images_folder=args.input,
                         dataset=args.dataset, resume=args.resume, device=device, skip_bad=args.skip_bad,
                         progress=not args.quiet)
    if args.executor == "slurm":
        from nnunet_swin.pretraining.job import submit
        submit(request, options_)
        return 0
    from nnunet_swin.pretraining.job import run_pretraining
    run_pretraining(request)
    return 0
