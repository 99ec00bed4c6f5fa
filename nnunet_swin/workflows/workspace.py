"""A self-contained nnU-Net workspace (raw / preprocessed / results / weights) and running stock commands in it.

Used by the demo and the learning-curve experiment: every stock nnU-Net command runs as a child process with the
``nnUNet_*`` variables pointing into the workspace and ``nnUNet_extTrainer`` pointing at our shim folder, exactly
as a user's shell would after ``eval "$(nnunet-swin env)"``.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nnunet_swin.errors import UserError


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "nnUNet_raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "nnUNet_preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "nnUNet_results"

    @property
    def weights(self) -> Path:
        return self.root / "pretrained_encoder"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def create(self) -> "Workspace":
        for p in (self.raw, self.preprocessed, self.results, self.weights, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def environment(self, num_processes: int = 1, da_processes: int = 1) -> dict[str, str]:
        """``os.environ`` plus the nnU-Net variables for this workspace (CPU friendly process counts)."""
        from nnunet_swin._nnunet_ext import ext_trainer_dir

        return {**os.environ, "nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                "nnUNet_results": str(self.results), "nnUNet_extTrainer": str(ext_trainer_dir()),
                "nnUNet_swin_pretrained": str(self.weights), "nnUNet_def_n_proc": str(num_processes),
                "nnUNet_n_proc_DA": str(da_processes), "nnUNet_compile": "f"}

    def dataset_folder(self, kind: str, dataset_id: int) -> Path:
        from nnunet_swin.raw_dataset.folders import find_dataset_folder

        base = {"raw": self.raw, "preprocessed": self.preprocessed, "results": self.results}[kind]
        return find_dataset_folder(base, dataset_id, f"nnUNet_{kind}")


def tool(name: str) -> str:
    """Path of a console script installed next to this Python (else on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise UserError(f"{name} not found; is nnunetv2 installed in this environment?")
    return found


def nnunet_swin_command(*args: str) -> list[str]:
    """``nnunet-swin <args>`` run with this Python."""
    return [sys.executable, "-m", "nnunet_swin.cli.main", *args]


def run_command(cmd: list[str], env: dict[str, str], log_file: Path,
                on_line: Callable[[str], None] | None = None, tail_lines: int = 30) -> tuple[int, str]:
    """Run ``cmd`` in its own process, appending its output to ``log_file`` and handing each line to ``on_line``;
    return (exit status, its last ``tail_lines`` lines). A command that cannot start returns 127."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    with open(log_file, "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    bufsize=1)
        except OSError as e:
            log.write(f"cannot start: {e}\n")
            return 127, f"cannot start {cmd[0]}: {e}"
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-tail_lines:]
            if on_line is not None:
                on_line(line.rstrip("\n"))
        code = proc.wait()
    return code, "".join(tail)


def run_logged(cmd: list[str], env: dict[str, str], log_file: Path,
               on_line: Callable[[str], None] | None = None) -> None:
    """:func:`run_command`, raising ``UserError`` with the output's tail when the command fails."""
    code, tail = run_command(cmd, env, log_file, on_line)
    if code != 0:
        raise UserError(f"`{shlex.join(cmd)}` failed with exit status {code}; last output:\n{tail}"
                        f"(full log: {log_file})")
