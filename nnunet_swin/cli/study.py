"""`nnunet-swin study`: the paper's whole study on one dataset as one resumable command (argument parsing only)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from nnunet_swin.cli import options

    p = argparse.ArgumentParser(
        prog="nnunet-swin study", parents=[options.dataset(), options.device(), options.processes(2),
                                           options.seed(0), options.progress()],
        description="Plan, train every arm with stock nnUNetv2_train (finished folds skipped, interrupted ones resumed "
                    "with --c), predict with stock nnUNetv2_predict, then evaluate, compare (Table 2), subtypes, ADI "
                    "and CKA, and write report.md + a self-contained report.html; here or on SLURM. State in "
                    "OUTPUT/study.json. Exit status 1 when a step failed (after the report).")
    p.add_argument("-o", "--output", required=True, help="study folder (report, logs, predictions, study.json)")
    p.add_argument("-pl", "--planner", default="SMITPlanner", help="SMITPlanner (default) or SwinUNETRPlanner")
    p.add_argument("-p", "--plans", default=None,
                   help="plans identifier (default nnUNetSMITPlans / nnUNetSwinUNETRPlans by planner); must exist "
                        "unless --plan")
    p.add_argument("--plan", action="store_true", help="plan and preprocess under -p even though it does not exist")
    p.add_argument("-backbone", "--backbone", default=None, help="backbone for planning (e.g. smit_tiny)")
    p.add_argument("--plan-args", default="",
                   help="more plan_and_preprocess flags as one string, e.g. \"-tumor_labels 1 -inplane_patch 96 96\"")
    p.add_argument("--arms", nargs="+", default=None,
                   help="Base TA ACT ACT-noTA ACT-rep Scratch Masked CNN, subtype arms B-only D-only / "
                        "only:<subtype> (default: the preset's)")
    p.add_argument("--cnn-planner", default=None,
                   help="the stock nnU-Net planner of the CNN arm (default nnUNetPlannerResEncM, plans "
                        "nnUNetResEncUNetMPlans; e.g. nnUNetPlannerResEncL, ExperimentPlanner)")
    p.add_argument("--cnn-plan-args", default="",
                   help="more nnUNetv2_plan_and_preprocess flags for the CNN arm as one string, e.g. "
                        "\"-overwrite_target_spacing 1 1 1\"")
    p.add_argument("--folds", nargs="+", type=int, default=[0], help="cross-validation folds (default 0)")
    p.add_argument("--preset", choices=("paper", "smoke", "demo", "quickstart"), default="paper",
                   help="paper: the recipe's trainers; smoke: ACT + Base with _smoke trainers (minutes); demo: the "
                        "synthetic dataset, smit_tiny, _demo trainers, every arm, CPU (hours); quickstart: what "
                        "`nnunet-swin demo` runs, the ACT arm alone on the synthetic dataset (minutes)")
    from nnunet_swin.workflows.study_arms import DEMO_TEST_CASES, DEMO_TRAIN_CASES
    p.add_argument("--demo-train-cases", type=int, default=None,
                   help=f"--preset demo: synthetic training cases, a quarter dark, all in its one fold (default "
                        f"{DEMO_TRAIN_CASES})")
    p.add_argument("--demo-test-cases", type=int, default=None,
                   help=f"--preset demo: synthetic test cases, stratified by subtype and by pf under the 64^3 crop "
                        f"(pf 0, below 0.5, 0.5 and above; default {DEMO_TEST_CASES})")
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: child processes here (default); slurm: jobs through submitit (sbatch), training "
                        "arms x folds as one job array, requeued on timeout/preemption and resumed with --c")
    p.add_argument("--jobs", type=int, default=1, help="local: steps run at the same time (default 1)")
    p.add_argument("--devices", nargs="+", default=None,
                   help="local: CUDA device ids, one training per device at a time (e.g. --devices 0 1, or 0,1)")
    s = p.add_argument_group("SLURM (--executor slurm)")
    options.slurm_flags(s, "resumes with nnU-Net's --c",
                        "submit what is ready and return; a later call picks the jobs up")
    s.add_argument("--slurm-gpus-per-job", type=int, default=1, help="GPUs per training job (default 1; 0: CPU)")
    s.add_argument("--slurm-cpus-per-job", type=int, default=None, help="CPUs per job (default: the cluster's)")
    s.add_argument("--slurm-array-parallelism", type=int, default=256,
                   help="jobs of one array running at the same time (default 256)")
    s.add_argument("--analysis-local", action="store_true",
                   help="run the analysis steps (predict, evaluate, compare, ADI, CKA) here, not as jobs")
    p.add_argument("--print-commands", action="store_true",
                   help="print one shell line per unfinished arm and exit")
    p.add_argument("--report-only", action="store_true", help="train nothing; aggregate whatever has finished")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nnunet_swin.errors import UserError
    from nnunet_swin.workflows.study import StudySettings, run_study

    demo_cases = {k: v for k, v in (("demo_num_train", args.demo_train_cases), ("demo_num_test", args.demo_test_cases))
                  if v is not None}
    if demo_cases and args.preset != "demo":
        raise UserError("--demo-train-cases / --demo-test-cases size the synthetic dataset of --preset demo; add "
                        "--preset demo or leave them out")
    if args.demo_train_cases is not None and args.demo_train_cases < 4:
        raise UserError(f"--demo-train-cases {args.demo_train_cases}: give at least 4 (a quarter of them dark)")
    if args.demo_test_cases is not None and args.demo_test_cases < 0:
        raise UserError(f"--demo-test-cases {args.demo_test_cases}: give 0 or more")
    if args.preset == "quickstart":        # the dataset `nnunet-swin demo` makes (its --num-train / --num-test)
        from nnunet_swin.workflows.quickstart import QuickstartOptions
        demo_cases = {"demo_num_train": QuickstartOptions.num_train, "demo_num_test": QuickstartOptions.num_test}
    from nnunet_swin.cluster import parse_mem_gb, parse_sbatch_options, parse_time
    from nnunet_swin.workflows.study_executors import SlurmOptions

    devices = None
    if args.devices is not None:
        devices = [d for item in args.devices for d in item.split(",") if d.strip()]
    device = args.device          # auto: the demo on the CPU, SLURM jobs on their GPUs, else this machine's rule
    if device == "auto":
        if args.preset in ("demo", "quickstart"):
            device = "cpu"
        elif args.executor == "slurm":
            device = "cuda" if args.slurm_gpus_per_job > 0 else "cpu"
        else:
            from nnunet_swin.device import default_device
            device = default_device()
    slurm = SlurmOptions(partition=args.slurm_partition, time_min=parse_time(args.slurm_time),
                         gpus_per_node=args.slurm_gpus_per_job, cpus_per_task=args.slurm_cpus_per_job,
                         mem_gb=parse_mem_gb(args.slurm_mem), array_parallelism=args.slurm_array_parallelism,
                         extra=parse_sbatch_options(args.slurm_sbatch), wait=not args.no_wait,
                         analysis_local=args.analysis_local)
    settings = StudySettings(output=Path(args.output), dataset_id=args.dataset_id, planner=args.planner,
                             plans=args.plans, plan=args.plan, backbone=args.backbone,
                             plan_args=shlex.split(args.plan_args), arms=args.arms, folds=args.folds,
                             preset=args.preset, executor=args.executor, slurm=slurm, jobs=args.jobs,
                             devices=devices, device=device, num_processes=args.num_processes,
                             print_commands=args.print_commands, report_only=args.report_only,
                             progress=not args.quiet, seed=args.seed, cnn_planner=args.cnn_planner,
                             cnn_plan_args=shlex.split(args.cnn_plan_args), **demo_cases)
    result = run_study(settings)
    if args.print_commands:
        if result:
            print("\n".join(result))
        else:
            print("nnunet-swin study: every arm has finished; nothing to train", file=sys.stderr)
        return 0
    if result.queued:
        print(f"nnunet-swin study: {len(result.queued)} job(s) queued or running ({', '.join(result.queued)}); run "
              f"the same command again to pick them up (state: {Path(args.output) / 'study.json'})")
        return 0
    if result.attempts == 0 and not result.failed:
        print(f"nnunet-swin study: nothing to do, every step is done or does not apply (see above); report: "
              f"{result.report}")
        return 0
    if result.report is not None:
        print(f"report: {result.report} (and {result.report.with_suffix('.html')})")
    if result.failed:
        print(f"nnunet-swin study: {len(result.failed)} step(s) FAILED: {', '.join(result.failed)} (the causes are "
              f"above, the logs in {Path(args.output) / 'logs'}); run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0
