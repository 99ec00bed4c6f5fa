"""The study as a table of steps, and the one runner that walks it.

A :class:`Step` names its inputs and outputs, the command it runs (a child process, through an executor) or the
quick file work it does here (``function``), the steps it needs, and whether it wants a GPU. It is *done* when its
outputs say so: by default every output exists and is newer than every input (make's rule); training overrides it
with nnU-Net's own ``checkpoint_final.pth``. :func:`run_steps` skips what is done (saying why), runs what is ready,
records every attempt in the journal, and never runs a step whose needs did not finish.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from nnunet_swin.errors import UserError
from nnunet_swin.workflows.study_state import Attempt, StepRecord, StudyState


@dataclass
class Step:
    name: str
    kind: str                                              # plan, train, predict, evaluate, compare, adi, ...
    log: Path
    outputs: Callable[[], list[Path]]
    inputs: Callable[[], list[Path]] = lambda: []
    command: Callable[[], list[str]] | None = None         # a child process, run by the executor
    function: Callable[[], None] | None = None             # or file work in this process
    needs: tuple[str, ...] = ()
    blocking: bool = True                                  # False: needs only order the steps (compare, report)
    resources: str = "cpu"                                 # cpu | gpu
    done: Callable[[], bool] | None = None                 # default: outputs exist, newer than the inputs
    done_because: str = "outputs present and newer than their inputs"
    skip: Callable[[], str | None] = lambda: None          # why the step does not apply (asked when ready)
    resume_flag: str | None = None                         # added when a job is requeued (nnU-Net's --c)
    on_line: Callable[[str], None] | None = None
    env: dict[str, str] = field(default_factory=dict)      # on top of the study's environment
    progress: Callable[[], list[Path]] | None = None       # files it rewrites as it goes (default below)

    def is_done(self) -> bool:
        return self.done() if self.done is not None else self.fresh()

    def progress_files(self) -> list[Path]:
        """What a step saves as it goes, so that an interrupted run resumes: as given, else, for a step resumed with
        nnU-Net's ``--c``, the ``checkpoint_latest.pth`` beside each ``checkpoint_final.pth`` it makes."""
        if self.progress is not None:
            return self.progress()
        return [p.parent / "checkpoint_latest.pth" for p in self.outputs()] if self.resume_flag == "--c" else []

    def fresh(self) -> bool:
        """Every output exists and is newer than every input that exists."""
        outputs = self.outputs()
        if not outputs or not all(p.exists() for p in outputs):
            return False
        inputs = [p for p in self.inputs() if p.exists()]
        return not inputs or min(p.stat().st_mtime for p in outputs) >= max(p.stat().st_mtime for p in inputs)


class Handle(Protocol):
    job_id: str | None      # a scheduler's job (None: a process of this call)
    queued: bool            # submitted and not to be waited for (--no-wait)
    pending: Attempt        # the attempt as submitted

    def result(self) -> Attempt: ...


class Executor(Protocol):
    name: str

    def start(self, steps: list[Step], previous: dict[str, Attempt]) -> list[Handle]: ...


@dataclass
class Journal:
    """Where the runner writes: the typed state (saved after every change) and the screen."""

    state: StudyState
    root: Path
    save: Callable[[], None]
    say: Callable[[str], None]
    attempts: int = 0            # attempts recorded by this call

    def rel(self, path: Path) -> str:
        """A path as ``study.json`` records it: relative to the study folder (``..`` for one outside it)."""
        return os.path.relpath(path, self.root)

    def record(self, step: Step, status: str, reason: str | None = None, attempt: Attempt | None = None) -> None:
        old = self.state.steps.get(step.name)
        record = StepRecord(status, step.kind, reason, self.rel(step.log), list(old.attempts) if old else [],
                            dict(old.details) if old else {})
        if attempt is not None:
            if record.attempts and attempt.job_id is not None and record.attempts[-1].job_id == attempt.job_id:
                record.attempts[-1] = attempt           # the same job, further on (queued -> done)
            else:
                record.attempts.append(attempt)
                self.attempts += 1
        self.state.steps[step.name] = record
        self.save()

    def previous(self, step: Step) -> Attempt | None:
        old = self.state.steps.get(step.name)
        return old.attempts[-1] if old and old.attempts else None


def _run_here(step: Step, journal: Journal) -> Attempt:
    started = time.perf_counter()
    try:
        step.function()
        return Attempt("local", "done", step.name, journal.rel(step.log),
                       seconds=round(time.perf_counter() - started, 2))
    except UserError as e:
        return Attempt("local", "failed", step.name, journal.rel(step.log), error=str(e))


def run_steps(steps: list[Step], executor: Executor, journal: Journal, wait: bool = True) -> dict[str, str]:
    """Walk the table until nothing more is ready; return each step's outcome (done, failed, skipped, blocked,
    queued; a step still waiting on a queued one is absent)."""
    outcome: dict[str, str] = {}
    names = {s.name for s in steps}
    while True:
        ready = []
        for step in steps:
            needs = [n for n in step.needs if n in names]
            if step.name in outcome or any(outcome.get(n, "queued") == "queued" for n in needs):
                continue                        # waits (on a job still in the scheduler: for a later call)
            if step.is_done():
                outcome[step.name] = "done"
                if (old := journal.state.steps.get(step.name)) is None or old.status != "done" or \
                        old.reason != f"skipped: {step.done_because}":
                    journal.record(step, "done", f"skipped: {step.done_because}")
                journal.say(f"[{step.name}] skipped: done ({step.done_because})")
                continue
            unmet = [n for n in needs if outcome[n] != "done"]
            if unmet and step.blocking:
                outcome[step.name] = "blocked"
                journal.record(step, "blocked", "needs " + ", ".join(f"{n} ({outcome[n]})" for n in unmet))
                journal.say(f"[{step.name}] not run: {journal.state.steps[step.name].reason}")
                continue
            if (reason := step.skip()) is not None:
                outcome[step.name] = "skipped"
                journal.record(step, "skipped", reason)
                journal.say(f"[{step.name}] skipped: {reason}")
                continue
            ready.append(step)
        if not ready:
            return outcome
        handles = [(s, _Done(_run_here(s, journal))) for s in ready if s.function is not None]
        remote = [s for s in ready if s.function is None]
        handles += list(zip(remote, executor.start(remote, {s.name: a for s in remote
                                                          if (a := journal.previous(s)) is not None})))
        for step, handle in handles:
            if handle.job_id is not None:      # on record before the wait: a later call finds the job
                journal.record(step, "queued", f"job {handle.job_id} in the scheduler", handle.pending)
        for step, handle in handles:
            if handle.queued:
                outcome[step.name] = "queued"
                continue
            attempt = handle.result()
            if attempt.outcome == "done" and not step.is_done():
                attempt.outcome, attempt.error = "failed", "it ended without writing its outputs"
            outcome[step.name] = attempt.outcome
            journal.record(step, attempt.outcome, attempt.error if attempt.outcome == "failed" else None, attempt)
            if attempt.outcome == "failed":
                journal.say(f"[{step.name}] FAILED: {attempt.error or 'see the log'} (log {attempt.log})")


@dataclass
class _Done:
    pending: Attempt
    job_id: str | None = None
    queued: bool = False

    def result(self) -> Attempt:
        return self.pending
