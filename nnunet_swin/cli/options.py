"""One command-line vocabulary: the options several commands share, as argparse parent parsers, and options taken
from a settings dataclass's fields (flag, default and help written once, on the field).

Every command spells a shared option the same way:

| option | meaning |
|---|---|
| ``--device`` | ``auto`` (default: cuda when this machine has it, else cpu), ``cpu``, ``cuda``, ``cuda:N`` |
| ``--quiet`` | no progress bars (logs are still written) |
| ``-np`` / ``--num-processes`` | worker processes |
| ``--seed`` | random seed |
| ``--tumor-labels`` | label values that are tumour |
| ``--file-ending`` | image / segmentation file ending |
| ``-d`` / ``--dataset`` | nnU-Net dataset id |

Older spellings (``--no-progress``, ``--no_pbar``, ``--num_processes``, ``--dataset_id``, ``--tumor_labels``) still
work for this release and print one deprecation line naming the new spelling. Importing this module imports
neither torch nor nnU-Net (``nnunet-swin <command> --help`` stays fast).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

REMOVED_IN = "0.3"


class _Deprecated(argparse.Action):
    """An old spelling: does what the new one does, after one line on stderr naming the new spelling."""

    def __init__(self, option_strings, dest, new: str, inner: type[argparse.Action] | str = "store", **kwargs):
        self.new = new
        self.inner = inner
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated and will be removed in {REMOVED_IN}; use "
              f"{self.new}", file=sys.stderr)
        value = self.const if self.inner == "store_true" else values
        setattr(namespace, self.dest, value)


def _alias(parser, old: str, new: str, dest: str, **kwargs) -> None:
    """``old`` as a hidden, deprecated spelling of ``new``."""
    if kwargs.pop("flag", False):
        parser.add_argument(old, dest=dest, action=_Deprecated, new=new, inner="store_true", nargs=0, const=True,
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    else:
        parser.add_argument(old, dest=dest, action=_Deprecated, new=new, default=argparse.SUPPRESS,
                            help=argparse.SUPPRESS, **kwargs)


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def device() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--device", default="auto",
                   help="auto (default: cuda when this machine has a CUDA GPU, else cpu), cpu, cuda or cuda:N")
    return p


def progress() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--quiet", action="store_true", help="no progress bars (logs are still written)")
    _alias(p, "--no-progress", "--quiet", "quiet", flag=True)
    _alias(p, "--no_pbar", "--quiet", "quiet", flag=True)
    return p


def processes(default: int) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("-np", "--num-processes", dest="num_processes", type=int, default=default,
                   help=f"worker processes (default {default})")
    _alias(p, "--num_processes", "-np/--num-processes", "num_processes", type=int)
    return p


def seed(default: int | None = 0) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--seed", type=int, default=default, help=f"random seed (default {default})")
    return p


def tumor_labels(help_default: str = "every foreground label") -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--tumor-labels", dest="tumor_labels", type=int, nargs="+", default=None,
                   help=f"label values that are tumour (default: {help_default})")
    _alias(p, "--tumor_labels", "--tumor-labels", "tumor_labels", type=int, nargs="+")
    return p


def file_ending(default: str | None = ".nii.gz", help_default: str | None = None) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--file-ending", dest="file_ending", default=default,
                   help=f"image / segmentation file ending (default {help_default or default})")
    _alias(p, "--file_ending", "--file-ending", "file_ending")
    return p


def dataset(default: int | None = None, required: bool = False) -> argparse.ArgumentParser:
    p = _parent()
    shown = f" (default {default})" if default is not None else ""
    p.add_argument("-d", "--dataset", dest="dataset_id", type=int, default=default, required=required,
                   help=f"nnU-Net dataset id, e.g. 501{shown}")
    _alias(p, "--dataset_id", "-d/--dataset", "dataset_id", type=int)
    return p


def from_dataclass(parser, cls, *names: str) -> None:
    """Add ``--<name>`` for each named field of the dataclass ``cls``: the default is the field's, the help and any
    argparse keywords (``type``, ``nargs``, ``choices``, ``flags``) come from the field's ``metadata``, and the
    help ends with the default, so the default is written once, on the field."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = fields[name]
        meta = dict(f.metadata)
        flags = meta.pop("flags", (f"--{name.replace('_', '-')}",))
        text = meta.pop("help", "")
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if isinstance(default, bool) and "action" not in meta:
            meta["action"] = "store_false" if default else "store_true"
        elif "type" not in meta and isinstance(default, (int, float, str)) and "nargs" not in meta:
            meta["type"] = type(default)
        shown = meta.pop("default_text", None) or (" ".join(map(str, default)) if isinstance(default, (list, tuple))
                                                   else default)
        suffix = "" if isinstance(default, bool) or default is None else f" (default {shown})"
        parser.add_argument(*flags, dest=name, default=default, help=text + suffix, **meta)
