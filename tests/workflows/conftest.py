"""A one-node SLURM on this machine for the study's cluster test: munged (the installed key, or a new one),
slurmctld and slurmd with their own ``slurm.conf`` in a temporary folder (``SLURM_CONF``), this host's name and CPU
count; stopped by process id afterwards. Where it cannot start, the tests that use it are SKIPPED with the reason."""
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
SlurmctldPort=6917
SlurmdPort=6918
SlurmUser=root
AuthType=auth/munge
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


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture(scope="module")
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
    (root / "slurm.conf").write_text(SLURM_CONF.format(host=host, root=root, cpus=os.cpu_count()))
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
    _stop(started)


def _stop(pids: list[int]) -> None:
    for pid in reversed(pids):
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


SMOKE_DATASET = 948
SMOKE_PLANS = "nnUNetSMITPlans"


def _plan_smoke_dataset(root: Path, dataset_id: int = SMOKE_DATASET) -> dict:
    """A planned dataset in ``root`` (4 training + 2 test cases, smit_tiny, 64 mm, one fold in splits_final.json)
    and a stand-in encoder; returns the environment a user would have."""
    import json
    import sys

    from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint

    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "nnUNet_compile": "f", "nnUNet_swin_pretrained": str(root / "weights")}
    make_demo_dataset(root / "raw", dataset_id, spec=SyntheticSpec(
        num_train=4, num_test=2, fov_mm=64, z_median_mm=40.0, z_iqr_mm=(32.0, 48.0), short_share=0.0), progress=False)
    subprocess.run([sys.executable, "-m", "nnunet_swin", "plan_and_preprocess", "-d", str(dataset_id), "-pl",
                    "SMITPlanner", "-backbone", "smit_tiny", "-inplane_patch", "64", "64", "-cubic_size", "64", "-c",
                    "3d_fullres", "-npfp", "1", "-np", "1", "--no_pbar"], env=env, check=True, capture_output=True)
    pre = next((root / "pre").glob(f"Dataset{dataset_id}_*"))
    cases = sorted(p.name[:-len(".pkl")] for p in (pre / f"{SMOKE_PLANS}_3d_fullres").glob("*.pkl"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": cases[:3], "val": cases[3:]}]))
    plans = json.loads((pre / f"{SMOKE_PLANS}.json").read_text())
    write_standin_checkpoint(plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"],
                             root / "weights" / "smit_tiny.pth")
    return {"env": env, "results": root / "res" / pre.name}


@pytest.fixture(scope="session")
def plan_smoke_dataset():
    """The function that plans the smoke dataset into a folder (a fixture: test modules import no conftest)."""
    return _plan_smoke_dataset
