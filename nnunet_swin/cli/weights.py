"""`nnunet-swin weights inspect PATH`: which format a checkpoint is, which backbone preset it fits, the key mapping;
`weights list`: the public checkpoints we know; `weights fetch NAME -o DIR`: download one where the network allows."""
from __future__ import annotations

import argparse
from pathlib import Path


def checkpoints_to_inspect(path: str, backbone: str | None) -> list[Path]:
    """A file as given; a folder with ``--backbone`` as the trainers resolve it (``<backbone>.pt`` / ``.pth`` in it,
    the one resolver), else every such file it holds."""
    from nnunet_swin.errors import UserError
    from nnunet_swin.networks.weights.location import checkpoint_files_in, resolve_pretrained_checkpoint

    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{path} does not exist; give a checkpoint file (.pt / .pth) or a folder holding "
                        f"<backbone>.pt / .pth files")
    if p.is_file() or backbone is not None:
        return [resolve_pretrained_checkpoint(backbone or p.stem, p)]
    if not p.is_dir():
        raise UserError(f"{path} is neither a file nor a folder")
    present = checkpoint_files_in(p)
    if not present:
        raise UserError(f"folder {path} holds no .pt/.pth file; the trainers look for <backbone>.pt or .pth there "
                        f"(e.g. smit.pth, swin_unetr.pt)")
    return present


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
    from nnunet_swin.networks.weights import inspect_checkpoint, read_checkpoint
    from nnunet_swin.networks.weights.metadata import describe, read_pretraining_metadata

    files = checkpoints_to_inspect(args.path, args.backbone)
    for i, path in enumerate(files):
        if len(files) > 1:
            print(("\n" if i else "") + f"== {path.name} (used for backbone {path.stem!r})")
        obj = read_checkpoint(path)  # read once: checkpoints can be large
        print(inspect_checkpoint(obj, label=str(path), merge_order=args.merge_order))
        metadata = read_pretraining_metadata(obj)
        if metadata is not None:
            print(describe(metadata))
    return 0
