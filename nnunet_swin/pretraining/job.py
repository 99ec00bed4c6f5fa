"""One pretraining run as a function of its request (:func:`run_pretraining`: here, or under ``torchrun``), and the
same run as a SLURM job across an allocation (:func:`submit`, :class:`PretrainJob`).

On SLURM the job is ``nodes x tasks_per_node`` tasks, one per GPU (on a CPU cluster, ``tasks_per_node`` processes
with the gloo backend). submitit starts every task; each one reads its rank, local rank, world size and the master's
address and port from submitit's ``JobEnvironment`` (``submitit.helpers.TorchDistributedEnvironment`` exports them as
the ``env://`` variables ``trainer.Pretrainer`` joins through ``distributed.init_world``): no launcher of our own.
A job that reaches its time limit or is preempted is requeued by submitit (``PretrainJob.checkpoint``) and the
requeued job continues from ``checkpoint_latest.pth``, as ``nnunet-swin pretrain --continue`` does.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from nnunet_swin import cluster
from nnunet_swin.errors import UserError
from nnunet_swin.pretraining.settings import FINAL, LATEST, settings_for_run

JOBS_FOLDER = "slurm"        # submitit's pickles and the per-task logs, inside the output folder


@dataclass
class RunRequest:
    """What ``nnunet-swin pretrain`` was asked: ``given`` the ``PretrainConfig`` fields the user set."""

    output: str
    given: dict = field(default_factory=dict)
    images_folder: str | None = None
    dataset: str | None = None
    resume: bool = False
    device: str = "auto"
    skip_bad: bool = False
    progress: bool = True

    def check(self):
        """``settings_for_run``'s checks (nothing written); returns its ``(config, images, resume)``."""
        return settings_for_run(self.output, self.given, self.images_folder, self.dataset, self.resume)


def run_pretraining(request: RunRequest, checked=None) -> Path:
    """Train (or continue) the run ``request`` names in this process; a ``torchrun`` or SLURM rank joins its process
    group here. Returns the final checkpoint."""
    from nnunet_swin.device import resolve_device
    from nnunet_swin.pretraining import distributed as D
    from nnunet_swin.pretraining.trainer import Pretrainer

    config, images, resume = checked or request.check()
    out = Path(request.output).expanduser()
    created = not out.exists()
    trainer = Pretrainer(config, out, images, device=resolve_device(request.device), resume=resume,
                         progress=request.progress)
    trainer.skip_bad = request.skip_bad
    try:
        trainer.setup()
    except UserError:
        if created and trainer.world.main and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise
    trainer.run()
    D.shutdown(trainer.world)
    return out / FINAL


class PretrainJob:
    """What every task of the SLURM job runs (pickled by submitit)."""

    def __init__(self, request: RunRequest, requeued: int = 0):
        self.request, self.requeued = request, requeued

    def __call__(self) -> dict:
        import submitit
        from submitit.helpers import TorchDistributedEnvironment

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:       # RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT for env://
            TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        final = run_pretraining(self.run_request())
        return {"rank": env.global_rank, "world_size": env.num_tasks, "checkpoint": str(final)}

    def run_request(self) -> RunRequest:
        """The run this task makes: as asked; once requeued, continued from ``checkpoint_latest.pth`` when one was
        saved (``--continue``). No progress bars in a job's log."""
        request = replace(self.request, progress=False)
        if self.requeued:
            request = replace(request, resume=(Path(request.output) / LATEST).is_file())
        return request

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on rank 0 at the time limit or on preemption: the same run, requeued; it continues
        from ``checkpoint_latest.pth`` when one was saved (``--continue``), else it starts again."""
        from submitit.helpers import DelayedSubmission

        out = Path(self.request.output)
        how = (f"continues from {LATEST} (--continue)" if (out / LATEST).is_file()
               else f"starts again (no {LATEST} saved yet; --save-every 1 saves one every epoch)")
        _append_log(out, f"time limit or preemption: job requeued; the next run {how}")
        return DelayedSubmission(PretrainJob(self.request, self.requeued + 1))


def _append_log(out: Path, text: str) -> None:
    from nnunet_swin.pretraining.trainer import LOG_FILE
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    if out.is_dir():
        with open(out / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(f"{stamp}: [nnunet-swin pretrain] {text}\n")


def check_allocation(options: cluster.SlurmOptions) -> None:
    """The allocation's shape, before SLURM is asked (one line each)."""
    if options.nodes < 1:
        raise UserError(f"--nodes {options.nodes}: give at least 1 node")
    if options.gpus_per_node < 0:
        raise UserError(f"--gpus-per-node {options.gpus_per_node}: give 0 (a CPU cluster) or more GPUs per node")
    if options.tasks_per_node < 1:
        raise UserError(f"--tasks-per-node {options.tasks_per_node}: give at least 1 task per node")
    if options.gpus_per_node and options.tasks_per_node != options.gpus_per_node:
        raise UserError(f"--tasks-per-node {options.tasks_per_node} with --gpus-per-node {options.gpus_per_node}: "
                        f"the run has one task per GPU; drop --tasks-per-node (it is for CPU clusters, "
                        f"--gpus-per-node 0)")


def submit(request: RunRequest, options: cluster.SlurmOptions, say: Callable[[str], None] = print,
           poll_s: float = 5.0) -> dict | None:
    """Check everything, submit the run as one SLURM job, and (``options.wait``) wait for it, saying its id, state
    and log; returns rank 0's result (None with ``--no-wait``). One-line ``UserError``s, nothing written, on bad
    input; a job that fails raises one with its log's last error line."""
    import submitit

    check_allocation(options)
    request.check()
    cluster.check_slurm(options, "the pretraining", gpus=options.gpus_per_node > 0)
    out = Path(request.output).expanduser().resolve()
    request = replace(request, output=str(out), images_folder=_absolute(request.images_folder))
    out.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=out / JOBS_FOLDER, cluster="slurm")
    ex.update_parameters(**options.submitit_parameters(gpus=options.gpus_per_node > 0), name="nnunet-swin-pretrain")
    try:
        job = ex.submit(PretrainJob(request))
    except Exception as e:      # sbatch's refusal, as SLURM words it
        raise UserError(f"SLURM refused the pretraining job ({cluster.last_error_line(str(e))}); fix the --slurm-* "
                        f"options or use --executor local") from None
    tasks = options.nodes * options.tasks_per_node
    log = job.paths.stdout
    say(f"[slurm] submitted pretraining job {job.job_id}: {options.nodes} node(s) x {options.tasks_per_node} "
        f"task(s) = world size {tasks} ({options.gpus_per_node or 'no'} GPU(s) per node); state "
        f"{cluster.squeue_state(job.job_id) or 'submitted'}; log {_shown(log)} (rank 0), "
        f"{_shown(out / 'pretrain_log.txt')}")
    if not options.wait:
        say(f"[slurm] not waiting (--no-wait): `squeue -j {job.job_id}` shows its state; a job that reaches its time "
            f"limit is requeued and continues by itself; {FINAL} appears in {_shown(out)} when it is done")
        return None
    if not cluster.wait_for(job, say, poll_s):
        tail = job.paths.stderr.read_text()[-3000:] if job.paths.stderr.is_file() else ""
        raise UserError(f"pretraining job {job.job_id} left the queue without a result: "
                        f"{cluster.last_error_line(tail) or 'killed?'} (log {_shown(job.paths.stderr)})")
    try:
        results = job.results()
    except Exception as e:      # submitit's FailedJobError holds the task's own traceback tail
        line = _user_line(str(e)) or cluster.last_error_line(str(e))
        raise UserError(f"pretraining job {job.job_id} failed: {line} (log {_shown(job.paths.stderr)})") from None
    say(f"[slurm] job {job.job_id} finished: {len(results)} rank(s) ran; {results[0]['checkpoint']}")
    return results[0]


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def _shown(path: Path) -> str:
    """A path as the user would type it from here (relative when below the working folder)."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _user_line(text: str) -> str | None:
    """A UserError's message in a task's traceback text."""
    marker = "nnunet_swin.errors.UserError: "
    lines = [l.strip() for l in text.splitlines() if marker in l]
    return lines[-1].split(marker, 1)[1] if lines else None
