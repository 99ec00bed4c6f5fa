"""`nnunet-swin <command> ...`: one console script, one module per command.

Each command module under ``nnunet_swin.cli`` exposes ``main(argv: list[str]) -> int | None``. Modules are imported
only when their command runs, so ``nnunet-swin --help`` stays fast and does not import torch.
"""
from __future__ import annotations

import contextlib
import importlib
import sys

from nnunet_swin.errors import UserError

# command -> (module under nnunet_swin.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan_and_preprocess": ("plan_and_preprocess",
                            "nnUNetv2_plan_and_preprocess with our planners (-pl SMITPlanner / SwinUNETRPlanner)"),
    "env": ("env", "print the `export nnUNet_extTrainer=...` line and check that nnU-Net finds our classes"),
    "make_demo_dataset": ("make_demo_dataset", "write a synthetic pelvic-MRI-like tumour dataset in nnU-Net raw format"),
    "demo": ("demo", "end to end on CPU: dataset -> plan -> train -> predict -> evaluate -> report"),
    "weights": ("weights", "inspect pretrained checkpoints: `weights inspect PATH`"),
    "pretrain": ("pretrain", "self-supervised pretraining (SMIT, SMART) of a Swin encoder on your own scans"),
    "evaluate": ("evaluate", "surface Dice, detection, volume ratio for one prediction folder"),
    "compare": ("compare", "paired statistics across several prediction folders (the paper's Table 2)"),
    "adi": ("adi", "attention dilution index per Swin stage"),
    "cka": ("cka", "linear CKA feature reuse between two models"),
    "subtypes": ("subtypes", "appearance subtypes by k-means on tumour features"),
    "study": ("study", "the paper's whole study as one resumable command: every arm, Table 2, subtypes, ADI, CKA"),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: nnunet-swin <command> [options]", "",
             "Fine-tune CT-pretrained 3D Swin transformers on MRI inside nnU-Net v2.", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `nnunet-swin <command> --help` for the options of a command."]
    return "\n".join(lines)


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Our own warnings (raised inside nnunet_swin) as one line ``nnunet-swin <command>: warning: ...``; others as
    Python shows them."""
    import os
    import warnings

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if os.path.abspath(filename).startswith(package + os.sep) and issubclass(category, UserWarning):
            print(f"nnunet-swin {command}: warning: {message}", file=file or sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from nnunet_swin import __version__
        print(f"nnunet-swin {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"nnunet-swin: error: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"nnunet_swin.cli.{COMMANDS[name][0]}")
    try:
        with _one_line_warnings(name):
            code = module.main(rest)
    except UserError as e:
        # on a fresh line: a progress bar on a terminal may have left the cursor mid-line
        fresh = "\n" if getattr(sys.stderr, "isatty", lambda: False)() else ""
        print(f"{fresh}nnunet-swin {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnunet-swin {name}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
