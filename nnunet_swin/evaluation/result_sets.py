"""Output folders that hold one complete result set or none: the old set goes before the new one is written.

A result set is the files one command writes into a folder, recognised by name (``evaluate``: ``metrics_per_case.csv``,
``summary_extended.md``, ``summary_extended.json``; ``compare``: ``comparison*``), with one completion marker written
last (``summary_extended.json``, ``comparison.json``). Before a new run writes anything, the old marker is removed
first, then the rest of the old set and any temporaries a killed run left (``nnunet_swin.io.sweep_temporaries``). So
after a kill at any moment the folder holds either no marker, or a marker beside the complete set it belongs to;
never a new CSV beside an old marker. Files of other names are left alone.
"""
from __future__ import annotations

import contextlib
import fnmatch
import os
from pathlib import Path
from typing import Iterator

from nnunet_swin.errors import UserError
from nnunet_swin.io import sweep_temporaries


def check_output_folder(folder: str | os.PathLike, option: str = "-o") -> Path:
    """Check, before any work, that results can go into ``folder`` (created only when written to): a UserError when it
    is a file, lies under a file, or it (or the folder it would be created in) is not writable."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output folder {folder} is a file; give a folder ({option})")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"output folder {folder} lies under the file {existing}; give a folder ({option})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"output folder {folder} is not writable ({existing} is read-only for you); choose another "
                        f"({option}) or fix its permissions")
    return folder


def clear_result_set(folder: str | os.PathLike, marker: str, patterns: tuple[str, ...]) -> list[Path]:
    """Remove an earlier run's set from ``folder``: its marker first, then the files matching ``patterns``, then
    stale temporaries. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if (folder / marker).is_file():
        (folder / marker).unlink()
        removed.append(folder / marker)
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns):
            p.unlink()
            removed.append(p)
    removed += sweep_temporaries(folder)
    return removed


@contextlib.contextmanager
def writing_into(folder: str | os.PathLike, option: str = "-o") -> Iterator[None]:
    """Turn a failed write (disk full, permissions, read-only file system) into one UserError naming the folder."""
    try:
        yield
    except OSError as e:
        raise UserError(f"cannot write into {folder} ({e.strerror or e}); choose a writable output folder "
                        f"({option}) and run again") from None
