"""Where the study's commands run: ``local`` (child processes of this call, ``--jobs`` at a time, one device each)
or ``slurm`` (submitit: one job array per wave of ready steps, GPU steps apart from CPU steps; a job that hits its
time limit or is preempted is requeued by submitit's ``checkpoint`` and resumes with nnU-Net's ``--c``)."""
from __future__ import annotations

import queue
import shlex
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nnunet_swin import cluster
from nnunet_swin.cluster import check_slurm, last_error_line, parse_sbatch_options, parse_time, squeue_state  # noqa: F401
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


class CommandJob:
    """What one SLURM job runs: one command, its output appended to the step's log. On timeout or preemption
    submitit calls :meth:`checkpoint`, which resubmits the command with ``resume_flag`` (nnU-Net's ``--c``)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: str, resume_flag: str | None = None):
        self.cmd, self.env, self.log, self.resume_flag = list(cmd), dict(env), log, resume_flag

    def __call__(self) -> dict:
        import os

        env = dict(self.env)
        env.pop("CUDA_VISIBLE_DEVICES", None)          # the allocation's GPUs, as SLURM set them
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        started = time.perf_counter()
        code, tail = _shielded(self.cmd, env, Path(self.log))
        return {"exit_status": code, "log_tail": tail, "seconds": round(time.perf_counter() - started, 2)}

    def resumed(self) -> "CommandJob":
        cmd = self.cmd if not self.resume_flag or self.resume_flag in self.cmd else self.cmd + [self.resume_flag]
        return CommandJob(cmd, self.env, self.log, self.resume_flag)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        with open(self.log, "a") as f:
            f.write(f"\n[nnunet-swin study] time limit or preemption: requeued; the next run resumes "
                    f"({self.resume_flag or 'from the start'})\n")
        return DelayedSubmission(self.resumed())


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
            attempt.error = last_error_line(str(e))
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
        ex = submitit.AutoExecutor(folder=self.folder, cluster="slurm")
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
                        jobs.append(ex.submit(CommandJob(cmd, {**self.env, **s.env}, str(s.log), s.resume_flag)))
            except Exception as e:      # sbatch's refusal, as SLURM words it
                raise UserError(f"SLURM refused the study's jobs ({last_error_line(str(e))}); fix the --slurm-* "
                                f"options or use --executor local") from None
            ids = sorted({j.job_id.split("_")[0] for j in jobs})
            self.say(f"[slurm] submitted {len(jobs)} {'GPU' if gpu else 'CPU'} job(s) as job {', '.join(ids)}: "
                     + ", ".join(s.name for s in group))
            for s, job, cmd in zip(group, jobs, commands):
                handles[s.name] = self._handle(job, s, shlex.join(cmd))
        return [handles[s.name] for s in steps]
