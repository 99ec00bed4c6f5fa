"""The one place that writes files: atomically, so a crash or a kill never leaves a half-written file behind.

Every writer writes a temporary file in the target's own folder (``.{name}.XXXX.tmp``) and moves it into place with
``os.replace``, which is atomic on one file system; on any error the temporary file is removed and the target is
left as it was. ``atomic_folder`` does the same for a whole folder.

JSON is strict: NaN and +-Infinity are written as ``null`` (Python's ``json`` would write the invalid tokens ``NaN``
/ ``Infinity``, which ``jq``, browsers and most other readers reject), numpy scalars become Python numbers, paths
become strings. A reader of our JSON therefore sees ``null`` wherever a value was undefined (e.g. a metric over no
cases).

This module imports neither torch nor matplotlib at import time (``evaluation`` needs no torch); the checkpoint and
figure writers take the object to write.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from nnunet_swin.errors import UserError

TEMPORARY_SUFFIX = ".tmp"


def read_json(path: str | os.PathLike, what: str = "file"):
    """The parsed JSON at ``path``, or a one-line UserError naming ``what`` is missing or broken and how to mend it.
    The one reader of the package's JSON files (plans, dataset.json, study state, result tables)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"invalid {what} at {path}: {e.msg} (line {e.lineno}, column {e.colno}); fix the JSON "
                        f"syntax or write the file again") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path} cannot be read ({e}); check its permissions and contents") from None


def _umask() -> int:
    """The process's umask (read by setting and restoring it; there is no other portable way)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary sibling of ``path``, then move it onto ``path``; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600: give the file what open() would under the umask
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return atomic_write(path, write)


def write_chunks(path: str | os.PathLike, chunks) -> Path:
    """Bytes from an iterable of chunks (e.g. a download), written whole or not at all: an exception raised while
    the chunks are produced (a broken connection, a checksum that does not match) leaves ``path`` as it was."""
    def write(tmp):
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
    return atomic_write(path, write)


def jsonable(value):
    """Nested dicts/lists with NaN/inf -> None, numpy scalars/arrays -> Python numbers/lists, paths -> str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_json(data, indent: int = 2) -> str:
    """Strict JSON text (see the module docstring: NaN/Infinity -> null)."""
    return json.dumps(jsonable(data), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data, indent: int = 2) -> Path:
    return write_text(path, dumps_json(data, indent))


def write_csv(path: str | os.PathLike, frame, index: bool = False) -> Path:
    """A pandas DataFrame as CSV."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=index))


def save_figure(path: str | os.PathLike, figure, dpi: int = 120, close: bool = True) -> Path:
    """A matplotlib figure as PNG (the package's one figure writer); the figure is closed afterwards unless
    ``close=False``, also when writing fails."""
    try:
        return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        if close:
            import matplotlib.pyplot as plt
            plt.close(figure)


def save_npy(path: str | os.PathLike, array) -> Path:
    """A numpy array as ``.npy`` (readable with ``np.load(path, mmap_mode="r")``)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))
    return atomic_write(path, write)


def save_checkpoint(path: str | os.PathLike, obj) -> Path:
    """``torch.save(obj)`` to ``path``: the package's one checkpoint writer."""
    import torch
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Build a folder in a temporary sibling and rename it to ``target`` at the end: it appears whole or not at all.

    ``target`` must not exist yet (the caller decides what to do with an old one). Yields the temporary folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700: what mkdir() would give under the umask
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries our writers left in ``folder`` (not recursive) after a kill; return what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(f".*{TEMPORARY_SUFFIX}"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed
