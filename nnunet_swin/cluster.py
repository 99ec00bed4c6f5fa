"""SLURM through submitit, for every command that sends work to a cluster (the study's job arrays, multi-node
pretraining): the job's options, the checks made before anything is submitted (each a one-line ``UserError``), and
the queue's view of a submitted job.

Ground floor: imports no peer and no workflow; submitit is imported only when a job is built.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from nnunet_swin.errors import UserError

EXECUTORS = ("local", "slurm")


@dataclass
class SlurmOptions:
    """One job's allocation: ``nodes`` x ``tasks_per_node`` tasks (one per GPU where there are GPUs), each with
    ``cpus_per_task`` CPUs; ``gpus_per_node`` GPUs on each node; ``mem_gb`` per node; ``time_min`` minutes."""

    partition: str | None = None
    time_min: int = 24 * 60
    nodes: int = 1
    gpus_per_node: int = 1
    tasks_per_node: int = 1
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    extra: dict = field(default_factory=dict)     # more sbatch options, e.g. {"qos": "high"}
    wait: bool = True                             # False: submit and return (--no-wait)

    def sbatch_flags(self, gpus: bool = True) -> list[str]:
        """The options as ``sbatch`` flags (what :func:`check_slurm` tests)."""
        flags = [f"--time={self.time_min}", f"--nodes={self.nodes}", f"--ntasks-per-node={self.tasks_per_node}"]
        flags += [f"--partition={self.partition}"] if self.partition else []
        flags += [f"--gpus-per-node={self.gpus_per_node}"] if gpus and self.gpus_per_node else []
        flags += [f"--cpus-per-task={self.cpus_per_task}"] if self.cpus_per_task else []
        flags += [f"--mem={int(self.mem_gb * 1024)}M"] if self.mem_gb else []
        return flags + [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in self.extra.items()]

    def submitit_parameters(self, gpus: bool = True) -> dict:
        """The options as ``submitit.AutoExecutor.update_parameters`` keywords."""
        params = {"timeout_min": self.time_min, "nodes": self.nodes, "tasks_per_node": self.tasks_per_node,
                  "slurm_additional_parameters": dict(self.extra),
                  "slurm_signal_delay_s": signal_delay_s(self.time_min)}
        params |= {"slurm_partition": self.partition} if self.partition else {}
        params |= {"gpus_per_node": self.gpus_per_node} if gpus and self.gpus_per_node else {}
        params |= {"cpus_per_task": self.cpus_per_task} if self.cpus_per_task else {}
        params |= {"mem_gb": self.mem_gb} if self.mem_gb else {}
        return params


def signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which SLURM warns the job (submitit requeues it then): submitit's 90 s,
    but at most half of a short limit (a 1-minute job would be warned as it starts)."""
    return max(10, min(90, time_min * 30))


def parse_time(text: str, flag: str = "--slurm-time") -> int:
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
        raise UserError(f"{flag} {text!r} is not a SLURM time of at least a minute; give minutes (e.g. 120) or "
                        f"HH:MM:SS or D-HH:MM:SS")
    return minutes


def parse_mem_gb(text: str | None, flag: str = "--slurm-mem") -> float | None:
    """``32G`` / ``16000M`` / ``1T`` (a bare number: GB) in GB."""
    if text is None:
        return None
    unit = text[-1].upper() if text[-1:].isalpha() else "G"
    try:
        value = float(text[:-1] if text[-1:].isalpha() else text)
    except ValueError:
        value = -1
    if unit not in ("G", "M", "T") or value <= 0:
        raise UserError(f"{flag} {text!r}: give a size such as 32G or 16000M")
    return value * {"G": 1, "M": 1 / 1024, "T": 1024}[unit]


def parse_sbatch_options(text: str, flag: str = "--slurm-sbatch") -> dict:
    """``"--qos=high --exclusive"`` -> ``{"qos": "high", "exclusive": True}`` (submitit's additional parameters)."""
    options = {}
    for word in shlex.split(text):
        if not word.startswith("--"):
            raise UserError(f"{flag} {text!r}: {word!r} is not a long sbatch option; write them as "
                            f"\"--qos=high --account=abc\"")
        key, eq, value = word[2:].partition("=")
        options[key.replace("-", "_")] = value if eq else True
    return options


def check_executor(name: str) -> None:
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; choose {' or '.join(EXECUTORS)}")


def last_error_line(tail: str | None) -> str | None:
    """The last line of a log tail that reads as an error (else its last line)."""
    lines = [l.strip() for l in (tail or "").splitlines() if l.strip()]
    errors = [l for l in lines if re.search(r"(Error|Exception|error:|FAILED|Killed|CANCELLED)", l)]
    return (errors or lines or [None])[-1]


def check_slurm(options: SlurmOptions, what: str = "the study's", gpus: bool = True) -> None:
    """SLURM is here and accepts these options (``sbatch --test-only``: nothing is queued); a one-line UserError
    with SLURM's own refusal otherwise. ``what`` names the jobs in the message."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UserError("--executor slurm needs the submitit package (pip install submitit); or use --executor "
                        "local") from None
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise UserError("--executor slurm: sbatch/squeue are not on PATH, SLURM is not installed here; run on a SLURM "
                        "login node (or install SLURM's client tools, e.g. apt-get install slurm-client), or use "
                        "--executor local")
    cmd = ["sbatch", "--test-only", "--job-name=nnunet-swin-check", *options.sbatch_flags(gpus), "--wrap", "true"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        refusal = last_error_line(proc.stderr + proc.stdout) or f"exit status {proc.returncode}"
        raise UserError(f"SLURM refused {what} job options ({refusal}); fix --slurm-partition / --slurm-* "
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


def wait_for(job, say: Callable[[str], None], poll_s: float = 5.0) -> bool:
    """Wait for a submitit job, saying each new queue state (``job <id>: RUNNING``); True when the job wrote its
    result, False when it left the queue without one (killed, cancelled). A requeued job goes on being waited for."""
    seen, gone = None, 0
    while not job.paths.result_pickle.exists() and gone < 3:
        state = squeue_state(job.job_id)
        if state != seen and state is not None:
            say(f"  job {job.job_id}: {state}")
        seen, gone = state, (gone + 1 if state is None else 0)
        if not job.paths.result_pickle.exists():
            time.sleep(poll_s)
    return job.paths.result_pickle.exists()
