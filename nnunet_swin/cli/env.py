"""`nnunet-swin env`: the export line for stock nnU-Net, the nnU-Net variables in use, and a resolution check.

Every line except the export starts with '#', so `eval "$(nnunet-swin env)"` sets the variable in the shell.
"""
from __future__ import annotations

import argparse
import os

from nnunet_swin.cli import options


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="nnunet-swin env",
                                description="Print `export nnUNet_extTrainer=...` and check that stock nnU-Net "
                                            "resolves our trainers and network. Use: eval \"$(nnunet-swin env)\"")
    p.add_argument("--ext-trainer-dir", dest="ext_trainer_dir", action="store_true",
                   help="print only the folder for nnUNet_extTrainer")
    p.add_argument("--no-check", dest="no_check", action="store_true",
                   help="skip the resolution checks (fast, no torch import)")
    options.deprecated(p, "--ext_trainer_dir", "--ext-trainer-dir", "ext_trainer_dir", flag=True)
    options.deprecated(p, "--no_check", "--no-check", "no_check", flag=True)
    a = p.parse_args(argv)
    from nnunet_swin import environment as env

    if a.ext_trainer_dir:
        print(env.ext_trainer_dir())
        return 0
    print(f"export {env.EXT_TRAINER_VAR}={env.ext_trainer_value()}")
    print("# nnU-Net variables in this shell:")
    for name in env.NNUNET_VARS:
        print(f"#   {name}={os.environ.get(name, '(unset)')}")
    if a.no_check:
        return 0
    checks = env.run_checks()
    print("# checks (as stock nnUNetv2_train / nnUNetv2_predict will resolve our classes):")
    for c in checks:
        print(f"#   [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    # the shell variable is informational: the export line above fixes it
    failed = [c for c in checks if not c.ok and c.name != "this shell"]
    return 1 if failed else 0
