"""`nnunet-swin demo`: synthetic data -> plan -> train -> predict -> evaluate -> report, on CPU."""
from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="nnunet-swin demo",
        description="Run the whole pipeline on a synthetic dataset on CPU with stock nnU-Net training and prediction "
                    "(about 20 minutes on 2 cores). Uses a reduced backbone (smit_tiny) whose encoder it first "
                    "SMIT-pretrains for a few minutes on synthetic CT-like volumes (nnunet-swin pretrain), and says "
                    "so in its output and report.")
    p.add_argument("-o", "--output", default="nnunet_swin_demo", help="workspace folder (default ./nnunet_swin_demo)")
    p.add_argument("-d", "--dataset_id", type=int, default=501, help="dataset id inside the workspace (default 501)")
    p.add_argument("--num_train", type=int, default=16, help="synthetic training cases (default 16)")
    p.add_argument("--num_test", type=int, default=6, help="synthetic test cases (default 6)")
    p.add_argument("--fov_mm", type=float, default=64.0, help="in-plane field of view of the scans (default 64)")
    p.add_argument("--trainer", default="SwinACTTrainer_demo", help="trainer class (default SwinACTTrainer_demo)")
    p.add_argument("-np", "--num_processes", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the pretraining")
    p.add_argument("--pretrain_epochs", type=int, default=20, help="epochs of the encoder's pretraining (default 20)")
    p.add_argument("--pretrain_iterations", type=int, default=20,
                   help="iterations per pretraining epoch (default 20)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous demo in the output folder")
    p.add_argument("--quiet", action="store_true", help="no progress output (logs are still written)")
    a = p.parse_args(argv)
    from nnunet_swin.errors import UserError
    from nnunet_swin.trainers import __all__ as trainer_names

    # every argument checked before the dataset, planning and the encoder's pretraining start
    if a.trainer not in trainer_names:
        raise UserError(f"unknown trainer {a.trainer!r}; choose one of {', '.join(trainer_names)}")
    if not 1 <= a.dataset_id <= 999:
        raise UserError(f"dataset id must be between 1 and 999, got {a.dataset_id}")
    for name, value, least in (("--num_train", a.num_train, 2), ("--num_test", a.num_test, 0),
                               ("-np", a.num_processes, 1), ("--pretrain_epochs", a.pretrain_epochs, 1),
                               ("--pretrain_iterations", a.pretrain_iterations, 1)):
        if value < least:
            raise UserError(f"{name} must be at least {least}, got {value}")
    if not a.fov_mm > 0:
        raise UserError(f"--fov_mm must be positive, got {a.fov_mm}")
    from nnunet_swin.workflows.demo import DemoSettings, run_demo

    result = run_demo(DemoSettings(output=Path(a.output), dataset_id=a.dataset_id, num_train=a.num_train,
                                   num_test=a.num_test, fov_mm=a.fov_mm, trainer=a.trainer,
                                   num_processes=a.num_processes, seed=a.seed, overwrite=a.overwrite,
                                   progress=not a.quiet, pretrain_epochs=a.pretrain_epochs,
                                   pretrain_iterations=a.pretrain_iterations))
    print(f"report: {result.report}")
    return 0
