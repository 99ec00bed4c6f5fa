"""`nnunet-swin weights inspect PATH`: which format a checkpoint is, which backbone preset it fits, the key mapping."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnunet-swin weights", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    inspect = sub.add_parser("inspect", help="describe a pretrained checkpoint (no dataset needed)")
    inspect.add_argument("path", help="checkpoint file (.pt / .pth)")
    args = parser.parse_args(argv)
    from nnunet_swin.networks.checkpoints import inspect_checkpoint
    print(inspect_checkpoint(args.path))
    return 0
