"""Where the study's commands run: ``local`` (child processes of this call, ``--jobs`` at a time, one device each)
or ``slurm`` (submitit: one job array per wave of ready steps, GPU steps apart from CPU steps; a job that hits its
time limit or is preempted is requeued by submitit's ``checkpoint`` and resumes with nnU-Net's ``--c``)."""
from __future__ import annotations

import queue
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nnunet_swin.errors import UserError
from nnunet_swin.workflows.study_runner import Step, last_error_line
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
class SlurmOptions:
    partition: str | None = None
    time_min: int = 24 * 60
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    array_parallelism: int = 256
    extra: dict = field(default_factory=dict)     # more sbatch options, e.g. {"qos": "high"}
    wait: bool = True
    analysis_local: bool = False


def parse_time(text: str) -> int:
    """SLURM's time formats (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in whole minutes."""
    try:
        days, hms = text.split("-", 1) if "-" in text else ("0", text)
        parts = [int(p) for p in hms.split(":")]
        if "-" in text:
            h, m, s = (parts + [0, 0])[:3]
        else:
            h, m, s = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
        minutes = int(days) * 1440 + h * 60 + m + (1 if s else 0)
    except (ValueError, KeyError):
        minutes = 0
    if minutes < 1:
        raise UserError(f"--slurm-time {text!r} is not a SLURM time of at least a minute; give minutes (e.g. 120) or "
                        f"HH:MM:SS or D-HH:MM:SS")
    return minutes


def parse_sbatch_options(text: str) -> dict:
    """``"--qos=high --exclusive"`` -> ``{"qos": "high", "exclusive": True}`` (submitit's additional parameters)."""
    options = {}
    for word in shlex.split(text):
        if not word.startswith("--"):
            raise UserError(f"--slurm-sbatch {text!r}: {word!r} is not a long sbatch option; write them as "
                            f"\"--qos=high --account=abc\"")
        key, eq, value = word[2:].partition("=")
        options[key.replace("-", "_")] = value if eq else True
    return options


def check_slurm(options: SlurmOptions) -> None:
    """SLURM is here and accepts these options (``sbatch --test-only``: nothing is queued); a one-line UserError
    with SLURM's own refusal otherwise."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UserError("--executor slurm needs the submitit package (pip install submitit); or use --executor "
                        "local") from None
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise UserError("--executor slurm: sbatch/squeue are not on PATH, SLURM is not installed here; run the study "
                        "on a SLURM login node (or install SLURM's client tools, e.g. apt-get install slurm-client), "
                        "or use --executor local")
    cmd = ["sbatch", "--test-only", f"--time={options.time_min}", "--job-name=nnunet-swin-check"]
    cmd += [f"--partition={options.partition}"] if options.partition else []
    cmd += [f"--gpus-per-node={options.gpus_per_job}"] if options.gpus_per_job else []
    cmd += [f"--cpus-per-task={options.cpus_per_job}"] if options.cpus_per_job else []
    cmd += [f"--mem={int(options.mem_gb * 1024)}M"] if options.mem_gb else []
    cmd += [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in options.extra.items()]
    proc = subprocess.run(cmd + ["--wrap", "true"], capture_output=True, text=True)
    if proc.returncode != 0:
        refusal = last_error_line(proc.stderr + proc.stdout) or f"exit status {proc.returncode}"
        raise UserError(f"SLURM refused the study's job options ({refusal}); fix --slurm-partition / --slurm-* "
                        f"(sinfo lists the partitions)")


def squeue_state(job_id: str) -> str | None:
    """The job's state in ``squeue`` (PENDING, RUNNING, ...), None once it has left the queue."""
    base = job_id.split("_")[0]
    proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", base], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        ident, _, state = line.strip().partition(" ")
        if ident == job_id:
            return state
    return None


class _SlurmHandle:
    def __init__(self, job, pending: Attempt, queued: bool, say: Callable[[str], None], poll_s: float):
        self.job, self.pending, self.job_id, self.queued = job, pending, job.job_id, queued
        self.say, self.poll_s = say, poll_s

    def result(self) -> Attempt:
        job, seen, gone = self.job, None, 0
        started = time.perf_counter()
        while not job.paths.result_pickle.exists() and gone < 3:
            state = squeue_state(self.job_id)
            if state != seen and state is not None:
                self.say(f"  job {self.job_id}: {state}")
            seen, gone = state, (gone + 1 if state is None else 0)
            if not job.paths.result_pickle.exists():
                time.sleep(self.poll_s)
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
        params = {"timeout_min": o.time_min, "slurm_array_parallelism": o.array_parallelism, "name": "nnunet-swin",
                  "slurm_additional_parameters": dict(o.extra)}
        params |= {"slurm_partition": o.partition} if o.partition else {}
        params |= {"gpus_per_node": o.gpus_per_job} if gpu and o.gpus_per_job else {}
        params |= {"cpus_per_task": o.cpus_per_job} if o.cpus_per_job else {}
        params |= {"mem_gb": o.mem_gb} if o.mem_gb else {}
        ex.update_parameters(**params)
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
