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

Older spellings (``--no-progress``, ``--no_pbar``, ``--num_processes``, ``--dataset_id``, ``--tumor_labels``,
``make_demo_dataset --num_train``, ``env --no_check``, ...) still work for this release and print one deprecation
line naming the new spelling (``deprecated``). A command's own settings come from its settings dataclass
(``from_dataclass``: flag, default and help written once, on the field; ``PretrainConfig``, ``SyntheticSpec``).
Importing this module imports neither torch nor nnU-Net (``nnunet-swin <command> --help`` stays fast).
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


def deprecated(parser, old: str, new: str, dest: str, **kwargs) -> None:
    """``old`` as a hidden, deprecated spelling of ``new`` (``flag=True`` for a switch; ``const`` its value, default
    ``True``; other keywords as for ``add_argument``)."""
    if kwargs.pop("flag", False):
        parser.add_argument(old, dest=dest, action=_Deprecated, new=new, inner="store_true", nargs=0,
                            const=kwargs.pop("const", True),
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
    deprecated(p, "--no-progress", "--quiet", "quiet", flag=True)
    deprecated(p, "--no_pbar", "--quiet", "quiet", flag=True)
    return p


def processes(default: int) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("-np", "--num-processes", dest="num_processes", type=int, default=default,
                   help=f"worker processes (default {default})")
    deprecated(p, "--num_processes", "-np/--num-processes", "num_processes", type=int)
    return p


def seed(default: int | None = 0) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--seed", type=int, default=default, help=f"random seed (default {default})")
    return p


def tumor_labels(help_default: str = "every foreground label") -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--tumor-labels", dest="tumor_labels", type=int, nargs="+", default=None,
                   help=f"label values that are tumour (default: {help_default})")
    deprecated(p, "--tumor_labels", "--tumor-labels", "tumor_labels", type=int, nargs="+")
    return p


def file_ending(default: str | None = ".nii.gz", help_default: str | None = None) -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--file-ending", dest="file_ending", default=default,
                   help=f"image / segmentation file ending (default {help_default or default})")
    deprecated(p, "--file_ending", "--file-ending", "file_ending")
    return p


def dataset(default: int | None = None, required: bool = False) -> argparse.ArgumentParser:
    p = _parent()
    shown = f" (default {default})" if default is not None else ""
    p.add_argument("-d", "--dataset", dest="dataset_id", type=int, default=default, required=required,
                   help=f"nnU-Net dataset id, e.g. 501{shown}")
    deprecated(p, "--dataset_id", "-d/--dataset", "dataset_id", type=int)
    return p


def slurm_flags(group, requeue: str, no_wait: str, time_default: str = "24:00:00") -> None:
    """The SLURM options every command with ``--executor slurm`` shares, added to ``group``; ``requeue`` says how a
    job that hits its time limit goes on, ``no_wait`` what ``--no-wait`` leaves (the values are read with
    ``nnunet_swin.cluster``'s parsers)."""
    group.add_argument("--slurm-partition", default=None, help="partition (default: the cluster's default)")
    group.add_argument("--slurm-time", default=time_default,
                       help=f"time limit per job: minutes, HH:MM:SS or D-HH:MM:SS (default {time_default}); a job "
                            f"that hits it is requeued and {requeue}")
    group.add_argument("--slurm-mem", default=None,
                       help="memory per node, e.g. 32G or 16000M (default: the cluster's)")
    group.add_argument("--slurm-sbatch", default="",
                       help="more sbatch options as one string, e.g. \"--qos=high --account=lab\"")
    group.add_argument("--no-wait", action="store_true", help=no_wait)


def from_dataclass(parser, cls, *names: str, only_given: bool = False, underscore_aliases: bool = False) -> None:
    """Add ``--<name>`` for each named field of the dataclass ``cls``: the default is the field's, the help and any
    argparse keywords (``type``, ``nargs``, ``choices``, ``metavar``, ``action``, ``flags``: the spellings, default
    ``--<name-with-dashes>``) come from the field's ``metadata``, and the help ends with the default, so the default
    is written once, on the field. ``default_text`` in the metadata is shown instead of the value (a ``None`` that
    means "taken from elsewhere"). A bool field is a switch to the other value unless ``action`` says otherwise
    (``argparse.BooleanOptionalAction``: ``--x`` / ``--no-x``, the help says "default on/off").

    ``only_given``: an option the user did not give stays out of the namespace, so ``given(args, cls)`` returns
    exactly the fields given on the command line (``--continue`` keeps a stored configuration but for those).
    ``underscore_aliases``: ``--num_train`` (the field's name) also works, as a deprecated spelling of
    ``--num-train``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = fields[name]
        meta = dict(f.metadata)
        flags = meta.pop("flags", (f"--{name.replace('_', '-')}",))
        text = meta.pop("help", "")
        shown = meta.pop("default_text", None)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if isinstance(default, bool):
            meta.setdefault("action", "store_false" if default else "store_true")
            if meta["action"] is argparse.BooleanOptionalAction and shown is None:
                shown = "on" if default else "off"
        elif "type" not in meta and isinstance(default, (int, float, str)) and "nargs" not in meta:
            meta["type"] = type(default)
        if shown is None and not isinstance(default, bool) and default is not None:
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        suffix = "" if shown is None else f" (default {shown})"
        action = parser.add_argument(*flags, dest=name, default=argparse.SUPPRESS if only_given else default,
                                     help=text, **meta)
        action.help = (text + suffix).replace("%", "%%")  # after: BooleanOptionalAction appends its own default
        old = f"--{name}"
        if underscore_aliases and "_" in name and old not in flags:
            keep = {k: meta[k] for k in ("type", "nargs", "choices") if k in meta}
            if isinstance(default, bool):
                keep.update(flag=True, const=not default)
            deprecated(parser, old, "/".join(flags), name, **keep)


def given(namespace: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` present in ``namespace`` (options added with ``only_given=True`` that the user gave);
    lists as tuples, as the dataclasses hold them."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(namespace).items() if k in names}
