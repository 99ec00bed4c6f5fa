"""The one writer module: atomic files, strict JSON, and that nothing else in the package writes files itself."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnunet_swin import io

PACKAGE = Path(__file__).resolve().parents[1] / "nnunet_swin"


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_nan_and_infinity_become_null(tmp_path):
    data = {"a": float("nan"), "b": [np.float32("inf"), -math.inf, 1.5], "c": np.int64(3), "d": (np.bool_(True),),
            "e": tmp_path, "f": np.arange(3)}
    path = io.write_json(tmp_path / "x.json", data)
    assert _strict(path.read_text()) == {"a": None, "b": [None, None, 1.5], "c": 3, "d": [True],
                                         "e": str(tmp_path), "f": [0, 1, 2]}


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = io.write_text(tmp_path / "t.txt", "old")

    def explode(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        io.atomic_write(target, explode)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_csv_png_checkpoint_and_folder_writers(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    io.write_csv(tmp_path / "t.csv", pd.DataFrame({"a": [1, 2]}))
    assert pd.read_csv(tmp_path / "t.csv")["a"].tolist() == [1, 2]
    fig = plt.figure()
    io.save_figure(tmp_path / "f.png", fig)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and not plt.fignum_exists(fig.number)
    io.save_npy(tmp_path / "a.npy", np.arange(4))
    assert np.load(tmp_path / "a.npy", mmap_mode="r").tolist() == [0, 1, 2, 3]
    io.save_checkpoint(tmp_path / "c.pth", {"w": torch.ones(2)})
    assert torch.equal(torch.load(tmp_path / "c.pth", weights_only=True)["w"], torch.ones(2))
    with pytest.raises(RuntimeError):
        with io.atomic_folder(tmp_path / "folder") as tmp:
            (tmp / "inside.txt").write_text("x")
            raise RuntimeError("killed")
    assert not (tmp_path / "folder").exists()
    with io.atomic_folder(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("x")
    assert (tmp_path / "folder" / "inside.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "c.pth", "f.png", "folder", "t.csv"]


def test_sweep_removes_only_our_temporaries(tmp_path):
    (tmp_path / ".metrics.csv.abc123.tmp").write_text("half")
    (tmp_path / ".ds.xyz.tmp").mkdir()
    (tmp_path / "keep.tmp").write_text("not ours")
    removed = io.sweep_temporaries(tmp_path)
    assert len(removed) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp"]


# Calls that write whole files; only nnunet_swin/io.py may make them (everything else writes through it). Appending
# to a running log (mode "a") is not a whole-file write and stays allowed.
_WRITERS = re.compile(r"os\.replace\(|tempfile\.mk|torch\.save\(|\.to_csv\(|\.savefig\(|json\.dump\(|"
                      r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"]wb?['\"]")


def test_no_module_but_io_writes_files_itself():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "io.py" and path.parent == PACKAGE:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _WRITERS.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "write through nnunet_swin.io instead:\n" + "\n".join(offenders)


def test_files_and_folders_follow_the_umask(tmp_path):
    """Colleagues in a shared lab folder can read what we write: the atomic temporaries (0600 / 0700) are given what
    open() / mkdir() would under the umask before they are moved into place."""
    import os
    import stat

    from nnunet_swin.io import atomic_folder, write_json

    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "a.json", {"x": 1})
        with atomic_folder(tmp_path / "cache") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o755
