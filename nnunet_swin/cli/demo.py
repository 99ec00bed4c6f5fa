"""`nnunet-swin demo`: synthetic data -> plan -> train -> predict -> evaluate -> report, on CPU."""
from __future__ import annotations

import argparse

from nnunet_swin.cli import options

def main(argv: list[str]) -> int:
    from nnunet_swin.workflows.demo import DemoSettings

    p = argparse.ArgumentParser(
        prog="nnunet-swin demo",
        parents=[options.dataset(DemoSettings.dataset_id), options.processes(DemoSettings.num_processes),
                 options.seed(DemoSettings.seed), options.progress()],
        description="Run the whole pipeline on a synthetic dataset on CPU with stock nnU-Net training and prediction "
                    "(about 20 minutes on 2 cores). Uses a reduced backbone (smit_tiny) whose encoder it first "
                    "SMIT-pretrains for a few minutes on synthetic CT-like volumes (nnunet-swin pretrain), and says "
                    "so in its output and report.")
    options.from_dataclass(p, DemoSettings, "output", "num_train", "num_test", "fov_mm", "trainer",
                           "pretrain_epochs", "pretrain_iterations", "overwrite", underscore_aliases=True)
    a = p.parse_args(argv)
    from nnunet_swin.errors import UserError
    from nnunet_swin.trainers import __all__ as trainer_names

    # every argument checked before the dataset, planning and the encoder's pretraining start
    if a.trainer not in trainer_names:
        raise UserError(f"unknown trainer {a.trainer!r}; choose one of {', '.join(trainer_names)}")
    if not 1 <= a.dataset_id <= 999:
        raise UserError(f"dataset id must be between 1 and 999, got {a.dataset_id}")
    for name, value, least in (("--num-train", a.num_train, 2), ("--num-test", a.num_test, 0),
                               ("-np", a.num_processes, 1), ("--pretrain-epochs", a.pretrain_epochs, 1),
                               ("--pretrain-iterations", a.pretrain_iterations, 1)):
        if value < least:
            raise UserError(f"{name} must be at least {least}, got {value}")
    if not a.fov_mm > 0:
        raise UserError(f"--fov-mm must be positive, got {a.fov_mm}")
    from nnunet_swin.workflows.demo import run_demo

    fields = {k: v for k, v in vars(a).items() if k != "quiet"}
    result = run_demo(DemoSettings(**fields, progress=not a.quiet))
    print(f"report: {result.report}")
    return 0
