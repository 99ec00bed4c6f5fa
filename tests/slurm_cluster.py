"""A one-node SLURM on this machine for the cluster tests (the study's, the pretraining's): munged (the installed
key, or a new one), slurmctld and slurmd with their own ``slurm.conf`` in a temporary folder (``SLURM_CONF``), this
host's name and CPU count, free ports (another test session may run its own); a requeued job waits ``cred_expire``
(20 s here, SLURM's default 120 s) before it starts again; stopped by process id afterwards. Where it cannot start,
the tests that use it are SKIPPED with the reason."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
SLURM_CONF = """ClusterName=nnunetswin
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=20
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=30
SchedulerParameters=sched_interval=1
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """``{"env": environment naming SLURM_CONF}`` for a running one-node cluster, or a skip saying why not."""
    missing = [d for d in DAEMONS if not os.access(d, os.X_OK)] + \
        [t for t in ("sbatch", "squeue", "sinfo") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"SLURM is not installed here (missing {', '.join(missing)}); .ci/run installs slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("starting munged/slurmctld/slurmd needs root")
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    (root / "slurm.conf").write_text(SLURM_CONF.format(host=host, root=root, cpus=os.cpu_count(),
                                                      ctld_port=_free_port(), slurmd_port=_free_port()))
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    started: list[int] = []
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        proc = subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"munged did not start: {proc.stderr.strip()}")
        started.append(_pid(Path("/run/munge/munged.pid")) or 0)
    for daemon, pid_file in (("/usr/sbin/slurmctld", "slurmctld.pid"), ("/usr/sbin/slurmd", "slurmd.pid")):
        proc = subprocess.run([daemon], env=env, capture_output=True, text=True)
        time.sleep(1)
        pid = _pid(root / pid_file)
        if proc.returncode != 0 or pid is None:
            _stop(started)
            log = (root / pid_file.replace(".pid", ".log"))
            pytest.skip(f"{daemon} did not start: {proc.stderr.strip() or (log.read_text()[-300:] if log.is_file() else '')}")
        started.append(pid)
    for _ in range(60):
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()
        if state == "idle":
            break
        time.sleep(1)
    else:
        _stop(started)
        pytest.skip(f"the SLURM node did not become idle within 60 s (sinfo: {state!r})")
    yield {"env": env, "root": root}
    _drain(env)
    _stop(started)


def _drain(env: dict, seconds: float = 60) -> None:
    """Let the jobs still in the queue end (a job step whose tasks are done still reports to slurmctld), cancel
    what is left: stopping the daemons under a running step leaves its slurmstepd behind."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        jobs = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True).stdout.split()
        if not jobs:
            return
        time.sleep(1)
    subprocess.run(["scancel", *jobs], env=env, capture_output=True)
    time.sleep(5)


def _stop(pids: list[int]) -> None:
    for pid in reversed(pids):
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


