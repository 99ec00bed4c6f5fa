"""`nnunet-swin weights inspect PATH`: which format a checkpoint is, which backbone preset it fits, the key mapping;
`weights list`: the public checkpoints we know; `weights fetch NAME -o DIR`: download one where the network allows."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnunet-swin weights", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    inspect = sub.add_parser("inspect", help="describe a pretrained checkpoint (no dataset needed)")
    inspect.add_argument("path", help="checkpoint file (.pt / .pth), or a folder as nnUNet_swin_pretrained may name "
                                      "(one <backbone>.pt / .pth per backbone)")
    inspect.add_argument("--backbone", default=None,
                         help="with a folder: inspect only the file the trainers take for this backbone (e.g. smit)")
    inspect.add_argument("--merge-order", choices=("legacy", "monai16"), default=None,
                         help="declare the patch-merging order the checkpoint was trained with (monai16: MONAI >= 1.5; "
                              "no key can tell; default: legacy for public checkpoints, our metadata for ours)")
    sub.add_parser("list", help="the public pretrained Swin checkpoints: source, licence, data, preset")
    fetch = sub.add_parser("fetch", help="download a public checkpoint into a folder nnUNet_swin_pretrained can name")
    fetch.add_argument("name", help="a name from `nnunet-swin weights list`")
    fetch.add_argument("-o", "--output", required=True, help="folder to put <preset>.pt in")
    fetch.add_argument("--url", default=None, help="another source for the same file (a mirror, file://...)")
    args = parser.parse_args(argv)
    if args.action == "list":
        from nnunet_swin.networks.weights.registry import table
        print(table())
        return 0
    if args.action == "fetch":
        from nnunet_swin.networks.weights.registry import fetch as fetch_checkpoint
        path = fetch_checkpoint(args.name, args.output, args.url)
        print(f"{args.name} -> {path} (export nnUNet_swin_pretrained={path.parent})")
        return 0
    from nnunet_swin.networks.weights import describe_checkpoints
    print(describe_checkpoints(args.path, args.backbone, args.merge_order))
    return 0
