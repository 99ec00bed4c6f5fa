"""`nnunet-swin demo`: the study engine's quickstart preset on a synthetic dataset, on CPU (argument parsing only)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    from nnunet_swin.cli import options
    from nnunet_swin.workflows.quickstart import QuickstartOptions

    p = argparse.ArgumentParser(
        prog="nnunet-swin demo",
        parents=[options.dataset(QuickstartOptions.dataset_id), options.processes(QuickstartOptions.num_processes),
                 options.seed(QuickstartOptions.seed), options.progress()],
        description="Run the whole pipeline on a synthetic dataset on CPU with stock nnU-Net training and prediction "
                    "(about 20 minutes on 2 cores): `nnunet-swin study --preset quickstart`, the ACT arm alone. Uses "
                    "a reduced backbone (smit_tiny) whose encoder it first SMIT-pretrains for a few minutes on "
                    "synthetic CT-like volumes (nnunet-swin pretrain), and says so in its output and report "
                    "(OUTPUT/report.md and report.html).")
    options.from_dataclass(p, QuickstartOptions, "output", "num_train", "num_test", "fov_mm", "trainer",
                           "pretrain_epochs", "pretrain_iterations", "overwrite", underscore_aliases=True)
    a = p.parse_args(argv)
    from nnunet_swin.workflows.quickstart import run_quickstart

    fields = {k: v for k, v in vars(a).items() if k != "quiet"}
    result = run_quickstart(QuickstartOptions(**fields, progress=not a.quiet))
    if result.report is not None:
        print(f"report: {result.report} (and {result.report.with_suffix('.html').name})")
    if result.failed:
        print(f"nnunet-swin demo: {len(result.failed)} step(s) FAILED: {', '.join(result.failed)} (the causes are "
              f"above, the logs in {a.output / 'logs'}); run the same command with --overwrite to start again",
              file=sys.stderr)
        return 1
    return 0
