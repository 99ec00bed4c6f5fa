"""Where the study's commands run: ``local`` (child processes of this call, ``--jobs`` at a time, one device each)
or ``slurm`` (submitit: one job array per wave of ready steps, GPU steps apart from CPU steps; a job that hits its
time limit or is preempted is requeued by submitit's ``checkpoint`` and resumes with nnU-Net's ``--c``)."""
from __future__ import annotations

import os
import queue
import shlex
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nnunet_swin import cluster
from nnunet_swin.cluster import last_error_line, squeue_state
from nnunet_swin.errors import UserError
from nnunet_swin.workflows.study_runner import Step
from nnunet_swin.workflows.study_state import Attempt


def run_command(cmd: list[str], env: dict[str, str], log_file: Path,
                on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run ``cmd`` in its own process, appending its output to ``log_file``; return (exit status, last 25 lines)."""
    from nnunet_swin.workflows.workspace import run_command as run
    return run(cmd, env, log_file, on_line, tail_lines=25)


def _shown(cmd: list[str]) -> str:
    return shlex.join(cmd[2:] if cmd[0] == sys.executable else cmd)[:160]


# ---------------------------------------------------------------------------------------------------------- local

@dataclass
class _LocalHandle:
    future: Future
    pending: Attempt = None
    job_id: str | None = None
    queued: bool = False

    def result(self) -> Attempt:
        return self.future.result()


class LocalExecutor:
    """Child processes of this call; ``jobs`` at a time, a GPU step holding one of ``devices`` while it runs."""

    name = "local"

    def __init__(self, env: dict[str, str], rel: Callable[[Path], str], say: Callable[[str], None], jobs: int = 1,
                 devices: list[str] | None = None):
        self.env, self.rel, self.say, self.devices = env, rel, say, devices
        self.free: queue.Queue = queue.Queue()
        for d in devices or []:
            self.free.put(d)
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(devices) if devices else jobs)))

    def start(self, steps: list[Step], previous: dict[str, Attempt]) -> list[_LocalHandle]:
        return [_LocalHandle(self.pool.submit(self._run, s)) for s in steps]

    def _run(self, step: Step) -> Attempt:
        device = self.free.get() if step.resources == "gpu" and self.devices else None
        env = {**self.env, **step.env, **({"CUDA_VISIBLE_DEVICES": device} if device is not None else {})}
        started = time.perf_counter()
        try:
            cmd = step.command()
            self.say(f"[{step.name}] {_shown(cmd)}" + (f" (device {device})" if device is not None else ""))
            code, tail = run_command(cmd, env, step.log, step.on_line)
        except UserError as e:      # e.g. a tool not installed: this step fails, the others go on
            return Attempt("local", "failed", step.name, self.rel(step.log), error=str(e))
        finally:
            if device is not None:
                self.free.put(device)
        ok = code == 0
        return Attempt("local", "done" if ok else "failed", shlex.join(cmd), self.rel(step.log), exit_status=code,
                       seconds=round(time.perf_counter() - started, 2),
                       error=None if ok else f"exit status {code}: {last_error_line(tail)}",
                       log_tail=None if ok else tail)


# ---------------------------------------------------------------------------------------------------------- slurm

def _shielded(cmd: list[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    """:func:`run_command` with the preemption signal (submitit's USR2) blocked in the child: the child keeps
    training until SLURM requeues the job, and submitit's handler in this process gets the signal."""
    import signal
    import threading

    from submitit.core.job_environment import JobEnvironment

    usr = JobEnvironment._usr_sig()
    box: dict = {}

    def work():
        signal.pthread_sigmask(signal.SIG_BLOCK, {usr})
        box["result"] = run_command(cmd, env, log)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(1.0)
    return box["result"]


class TimeLimitTooShort(Exception):
    """A job that reached its time limit twice without saving a checkpoint: requeueing it again would loop."""


MARK = "[nnunet-swin study]"


def _mtimes(paths: list[str]) -> dict[str, int | None]:
    return {p: (os.stat(p).st_mtime_ns if os.path.exists(p) else None) for p in paths}


class CommandJob:
    """What one SLURM job runs: one command, its output appended to the step's log.

    On timeout or preemption submitit calls :meth:`checkpoint`. A job that saved a checkpoint during its run
    (``progress``: nnU-Net's ``checkpoint_latest.pth``) is requeued and resumes with ``resume_flag`` (``--c``); one
    that saved none is requeued once more; a requeued job that again reaches its time limit without saving one stops
    with one line (the time limit is shorter than the way to the first checkpoint, and what to give instead).
    Each decision is written to the step's log."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: str, resume_flag: str | None = None,
                 progress: list[str] | None = None, time_min: int | None = None, attempt: int = 1):
        self.cmd, self.env, self.log, self.resume_flag = list(cmd), dict(env), log, resume_flag
        self.progress, self.time_min, self.attempt = list(progress or []), time_min, attempt
        self._at_start: dict[str, int | None] = {}
        self._started = time.time()

    def __call__(self) -> dict:
        env = dict(self.env)
        env.pop("CUDA_VISIBLE_DEVICES", None)          # the allocation's GPUs, as SLURM set them
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        self._at_start, self._started = _mtimes(self.progress), time.time()
        started = time.perf_counter()
        code, tail = _shielded(self.cmd, env, Path(self.log))
        return {"exit_status": code, "log_tail": tail, "seconds": round(time.perf_counter() - started, 2)}

    def resumed(self, attempt: int | None = None) -> "CommandJob":
        saved = not self.progress or any(os.path.exists(p) for p in self.progress)     # unknown: resume anyway
        resume = self.resume_flag and self.resume_flag not in self.cmd and saved
        return CommandJob(self.cmd + [self.resume_flag] if resume else self.cmd, self.env, self.log, self.resume_flag,
                          self.progress, self.time_min, attempt or self.attempt + 1)

    def _note(self, text: str) -> None:
        with open(self.log, "a") as f:
            f.write(f"\n{MARK} {text}\n")

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        ran = time.time() - self._started
        limit = (self.time_min or 0) * 60
        timed_out = bool(limit) and ran >= min(0.8 * limit, limit - 600)     # submitit's rule
        saved = [p for p, m in _mtimes(self.progress).items() if m is not None and m != self._at_start.get(p)]
        if not timed_out or not self.progress:
            self._note(f"preemption or time limit after {ran:.0f} s (attempt {self.attempt}): requeued; the next run "
                       f"{'resumes with ' + self.resume_flag if self.resume_flag else 'starts again'}")
            return DelayedSubmission(self.resumed(attempt=self.attempt))      # a preemption is not the limit's fault
        if saved:
            self._note(f"time limit ({self.time_min} min) reached after {ran:.0f} s (attempt {self.attempt}), "
                       f"{Path(saved[0]).name} saved during it: requeued; the next run resumes with "
                       f"{self.resume_flag}")
            return DelayedSubmission(self.resumed(attempt=1))
        if self.attempt == 1:
            old = any(m is not None for m in self._at_start.values())
            self._note(f"time limit ({self.time_min} min) reached after {ran:.0f} s before a checkpoint was saved: "
                       f"requeued once more ({'resumes with ' + str(self.resume_flag) if old else 'from the start'}); "
                       f"if it again ends without one, the step fails")
            return DelayedSubmission(self.resumed())
        message = (f"--slurm-time {self.time_min} min is shorter than one training epoch up to its first "
                   f"checkpoint: {self.attempt} attempts reached the time limit without writing "
                   f"{Path(self.progress[0]).name}; give a longer --slurm-time (e.g. {suggest_minutes(self.time_min)}) "
                   f"and run the study again")
        self._note(message)
        raise TimeLimitTooShort(message)


def suggest_minutes(minutes: int) -> str:
    """A longer SLURM time to suggest: four times the one that was too short, in SLURM's format."""
    m = max(4 * minutes, 10)
    return f"{m // 60:02d}:{m % 60:02d}:00"


def too_short_line(text: str) -> str | None:
    """The :class:`TimeLimitTooShort` message in a job's traceback text."""
    lines = [l.split("TimeLimitTooShort: ", 1)[1] for l in text.splitlines() if "TimeLimitTooShort: " in l]
    return lines[-1].strip() if lines else None


@dataclass
class SlurmOptions(cluster.SlurmOptions):
    """The allocation of one study job (``gpus_per_node``: GPUs per training job; ``cpus_per_task``: CPUs per job),
    and how the study's arrays go out."""

    array_parallelism: int = 256
    analysis_local: bool = False


class _SlurmHandle:
    def __init__(self, job, pending: Attempt, queued: bool, say: Callable[[str], None], poll_s: float):
        self.job, self.pending, self.job_id, self.queued = job, pending, job.job_id, queued
        self.say, self.poll_s = say, poll_s

    def result(self) -> Attempt:
        job, started = self.job, time.perf_counter()
        cluster.wait_for(job, self.say, self.poll_s)
        attempt = Attempt(**{**self.pending.__dict__, "seconds": round(time.perf_counter() - started, 2)})
        if not job.paths.result_pickle.exists():
            tail = job.paths.stderr.read_text()[-3000:] if job.paths.stderr.is_file() else ""
            attempt.outcome, attempt.log_tail = "failed", tail or None
            attempt.error = f"job {self.job_id} left the queue without a result: {last_error_line(tail) or 'killed?'}"
            return attempt
        try:
            value = job.result()
        except Exception as e:      # submitit's FailedJobError holds the job's own traceback tail
            attempt.outcome, attempt.log_tail = "failed", str(e)[-3000:]
            attempt.error = too_short_line(str(e)) or last_error_line(str(e))
            return attempt
        attempt.exit_status, attempt.seconds = value["exit_status"], value.get("seconds", attempt.seconds)
        if value["exit_status"] == 0:
            attempt.outcome = "done"
        else:
            attempt.outcome, attempt.log_tail = "failed", value["log_tail"]
            attempt.error = f"exit status {value['exit_status']}: {last_error_line(value['log_tail'])}"
        return attempt


class SlurmExecutor:
    """Jobs through submitit; the GPU steps of a wave as one array, the CPU steps as another (or, with
    ``analysis_local``, here)."""

    name = "slurm"

    def __init__(self, folder: Path, options: SlurmOptions, env: dict[str, str], rel: Callable[[Path], str],
                 say: Callable[[str], None], local: LocalExecutor | None = None, poll_s: float = 5.0):
        self.folder, self.options, self.env, self.rel, self.say = folder, options, env, rel, say
        self.local, self.poll_s = local, poll_s

    def _executor(self, gpu: bool):
        import submitit

        o = self.options
        # requeues are bounded by CommandJob's no-progress rule, not by submitit's count of timeouts (3)
        ex = submitit.AutoExecutor(folder=self.folder, cluster="slurm", slurm_max_num_timeout=10_000)
        ex.update_parameters(**o.submitit_parameters(gpus=gpu), slurm_array_parallelism=o.array_parallelism,
                             name="nnunet-swin")
        return ex

    def _handle(self, job, step: Step, command: str):
        pending = Attempt("slurm", "queued", command, self.rel(step.log), job_id=job.job_id,
                          job_log=self.rel(job.paths.stdout))
        return _SlurmHandle(job, pending, not self.options.wait, self.say, self.poll_s)

    def start(self, steps: list[Step], previous: dict[str, Attempt]) -> list:
        import submitit

        handles: dict[str, object] = {}
        fresh = []
        for s in steps:
            a = previous.get(s.name)
            if a is not None and a.outcome == "queued" and a.executor == "slurm" and a.job_id:
                job = submitit.SlurmJob(folder=self.folder, job_id=a.job_id)
                self.say(f"[{s.name}] job {a.job_id} of an earlier call: {squeue_state(a.job_id) or 'finished'}")
                handles[s.name] = self._handle(job, s, a.command)
            elif self.local is not None and s.resources == "cpu" and self.options.analysis_local:
                handles[s.name] = self.local.start([s], previous)[0]
            else:
                fresh.append(s)
        for gpu in (True, False):
            group = [s for s in fresh if (s.resources == "gpu") == gpu]
            if not group:
                continue
            ex, jobs = self._executor(gpu), []
            commands = [s.command() for s in group]
            try:
                with ex.batch():
                    for s, cmd in zip(group, commands):
                        s.log.parent.mkdir(parents=True, exist_ok=True)
                        jobs.append(ex.submit(CommandJob(cmd, {**self.env, **s.env}, str(s.log), s.resume_flag,
                                                         [str(p) for p in s.progress_files()],
                                                         self.options.time_min)))
            except Exception as e:      # sbatch's refusal, as SLURM words it
                raise UserError(f"SLURM refused the study's jobs ({last_error_line(str(e))}); fix the --slurm-* "
                                f"options or use --executor local") from None
            ids = sorted({j.job_id.split("_")[0] for j in jobs})
            self.say(f"[slurm] submitted {len(jobs)} {'GPU' if gpu else 'CPU'} job(s) as job {', '.join(ids)}: "
                     + ", ".join(s.name for s in group))
            for s, job, cmd in zip(group, jobs, commands):
                handles[s.name] = self._handle(job, s, shlex.join(cmd))
        return [handles[s.name] for s in steps]
