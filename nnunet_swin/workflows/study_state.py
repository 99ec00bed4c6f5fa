"""The study's state, typed: what every step and arm came to and every attempt made, written atomically to
``OUTPUT/study.json`` (``nnunet_swin.io``) and read back by the next call and by the report as it is.

What is *finished* is never taken from here: nnU-Net's files say that (``fold_X/checkpoint_final.pth``, the
predictions, our analysis outputs; ``study_steps``). This file says what was tried, where, how it ended, and why a
step did not run. Every path in the file is relative to the study folder (``..`` for folders outside it: the
nnU-Net folders, the Python that ran a command), so a study folder can be moved or shared; :func:`read_state`
resolves the folders back against it. In memory, ``environment`` and ``ArmRecord.model_folder`` are absolute and the
logs are relative to the study folder.
"""
from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json, write_json

STATE_FILE = "study.json"
KIND = "nnunet-swin study"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class Attempt:
    """One run of one step: where it ran (executor, job id), its log and how it ended."""

    executor: str                 # local | slurm
    outcome: str                  # done | failed | queued (submitted; not finished when the call returned)
    command: str
    log: str                      # relative to the study folder
    started: str = field(default_factory=now)
    job_id: str | None = None
    job_log: str | None = None    # the scheduler's own output of the job (submitit's log)
    exit_status: int | None = None
    error: str | None = None      # the log's last error line
    log_tail: str | None = None
    seconds: float | None = None


@dataclass
class StepRecord:
    """The last word on one step: ``done``, ``failed``, ``skipped`` (with the reason), ``blocked`` (a step it needs
    did not finish) or ``queued`` (a job still in the scheduler)."""

    status: str
    kind: str = ""
    reason: str | None = None
    log: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    details: dict = field(default_factory=dict)


@dataclass
class ArmRecord:
    """An arm, summed over its fold steps (written after every call, read by the report)."""

    status: str                   # done | failed | queued | missing
    trainer: str
    configuration: str
    folds: list[int]
    model_folder: str
    log: str
    subtype: str | None = None
    reason: str | None = None
    log_tail: str | None = None
    cost: dict | None = None
    prediction: dict | None = None


@dataclass
class StudyState:
    dataset: str
    dataset_id: int
    plans: str
    planner: str
    preset: str
    environment: dict[str, str]
    kind: str = KIND
    folds: list[int] = field(default_factory=lambda: [0])
    arm_order: list[str] = field(default_factory=list)
    custom_folds: dict[str, dict] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    arms: dict[str, ArmRecord] = field(default_factory=dict)
    test_split: str | None = None
    pretrained_note: str | None = None
    executor: str = "local"
    cnn_planner: str | None = None    # the CNN arm's stock planner, once a study ran it
    updated: str = ""

    def to_dict(self) -> dict:
        """The JSON form (``None`` fields left out), as the report reads it."""
        return _drop_none(asdict(self))

    def save(self, path: Path) -> None:
        """Atomically to ``path``, every path relative to the study folder (``path``'s folder)."""
        self.updated = now()
        write_json(path, relative_paths(self.to_dict(), path.parent))

    @classmethod
    def from_dict(cls, data: dict) -> "StudyState":
        known = _known(cls, data)
        known["steps"] = {k: _step(v) for k, v in data.get("steps", {}).items()}
        known["arms"] = {k: ArmRecord(**_known(ArmRecord, v)) for k, v in data.get("arms", {}).items()
                         if {"status", "trainer", "configuration"} <= set(v)}
        return cls(**known)


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    defaults = {"folds": [], "model_folder": "", "log": ""} if cls is ArmRecord else {}
    return {**{k: v for k, v in defaults.items() if k not in data}, **{k: v for k, v in data.items() if k in names}}


def _step(data: dict) -> StepRecord:
    known = _known(StepRecord, data)
    known["attempts"] = [Attempt(**_known(Attempt, a)) for a in data.get("attempts", [])]
    known["details"] = {**data.get("details", {}),
                        **{k: v for k, v in data.items() if k not in {f.name for f in fields(StepRecord)}}}
    return StepRecord(**known)


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def read_state(output: Path) -> StudyState | None:
    """The state of the study in ``output``, or None when there is none; a foreign or broken file stops."""
    path = output / STATE_FILE
    if not path.is_file():
        return None
    data = read_json(path, "study state (give another folder with -o)")
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UserError(f"{path} was not written by `nnunet-swin study`; give another folder (-o)")
    try:
        return StudyState.from_dict(resolved_paths(data, output))
    except (TypeError, KeyError) as e:
        raise UserError(f"{path} is incomplete ({e}); give another folder (-o)") from None


# ------------------------------------------------------------------------------------ paths relative to the folder

_PATH_KEYS = ("log", "job_log", "model_folder")       # wherever they occur (steps, attempts, arms, predictions)
_RESOLVED_KEYS = ("model_folder",)                    # absolute again when read (the logs stay relative)


def _rel(value: str, root: Path) -> str:
    return os.path.relpath(value, root) if os.path.isabs(value) else value


def _command(text: str, root: Path) -> str:
    """A recorded command line with its absolute words (the Python, input and output folders) made relative."""
    try:
        words = shlex.split(text)
    except ValueError:
        return text
    return shlex.join(_rel(w, root) if w.startswith("/") else w for w in words)


def relative_paths(value, root: Path, key: str | None = None):
    """The JSON form ``value`` with every path relative to ``root``: the path fields and the environment's folders
    by ``os.path.relpath``, the words of commands alike, and ``root`` itself cut out of free text (reasons, errors,
    log tails)."""
    root = Path(root)
    if isinstance(value, dict):
        if key == "environment":
            return {k: _rel(v, root) if isinstance(v, str) else v for k, v in value.items()}
        return {k: relative_paths(v, root, k) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, root, key) for v in value]
    if not isinstance(value, str):
        return value
    if key in _PATH_KEYS:
        return _rel(value, root)
    if key == "command":
        return _command(value, root)
    return re.sub(re.escape(str(root)) + r"(/|(?![\w-]|\.\w))", lambda m: "" if m.group(1) else ".", value)


def resolved_paths(value, root: Path, key: str | None = None):
    """``relative_paths`` undone where the program needs absolute folders (the environment, model folders)."""
    root = Path(root)
    if isinstance(value, dict):
        if key == "environment":
            return {k: os.path.normpath(root / v) if isinstance(v, str) and v else v for k, v in value.items()}
        return {k: resolved_paths(v, root, k) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved_paths(v, root, key) for v in value]
    if isinstance(value, str) and key in _RESOLVED_KEYS and value:
        return os.path.normpath(root / value)
    return value
