"""Pretraining on SLURM: the argument checks (one line, nothing written, before anything is submitted), then a real
two-rank CPU run on the one-node SLURM of ``tests/slurm_cluster.py`` (skipped, with the reason, where it cannot
start)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from nnunet_swin import cluster
from nnunet_swin.cli.main import main
from nnunet_swin.pretraining.trainer import FINAL

TINY_FLAGS = ["-backbone", "smit_tiny", "--modality", "CT", "--epochs", "2", "--iterations-per-epoch", "2", "--crop",
              "32", "--batch-size", "1", "--num-workers", "0", "--out-dim", "32", "--head-hidden", "16",
              "--head-bottleneck", "8", "--quiet"]


def _refused(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("extra, says", [
    (["--executor", "kubernetes"], "unknown executor 'kubernetes'; choose local or slurm"),
    (["--executor", "slurm", "--nodes", "0"], "--nodes 0: give at least 1 node"),
    (["--executor", "slurm", "--gpus-per-node", "-1"], "--gpus-per-node -1"),
    (["--executor", "slurm", "--gpus-per-node", "2", "--tasks-per-node", "3"], "one task per GPU"),
    (["--executor", "slurm", "--slurm-time", "0"], "--slurm-time '0' is not a SLURM time of at least a minute"),
    (["--executor", "slurm", "--slurm-mem", "lots"], "--slurm-mem 'lots': give a size such as 32G"),
    (["--executor", "slurm", "--slurm-sbatch", "-q high"], "is not a long sbatch option"),
    (["--executor", "slurm", "--gpus-per-node", "1", "--device", "cpu"], "the device follows the allocation"),
    (["--nodes", "2"], "--nodes is for --executor slurm"),
    (["--slurm-partition", "gpu"], "--slurm-partition is for --executor slurm"),
])
def test_bad_executor_arguments_are_refused_in_one_line_before_any_work(ct_folder, tmp_path, capsys, extra, says):
    out = tmp_path / "run"
    line = _refused(capsys, ["pretrain", "-i", str(ct_folder), "-o", str(out), *TINY_FLAGS, *extra])
    assert says in line
    assert not out.exists()


def test_slurm_not_installed_is_one_line_naming_the_way_out(ct_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "run"
    line = _refused(capsys, ["pretrain", "-i", str(ct_folder), "-o", str(out), *TINY_FLAGS, "--executor", "slurm",
                             "--tasks-per-node", "2"])
    assert "sbatch/squeue are not on PATH" in line and "--executor local" in line
    assert not out.exists()


def test_a_bad_run_is_refused_before_slurm_is_asked(tmp_path, capsys):
    out = tmp_path / "run"
    line = _refused(capsys, ["pretrain", "-o", str(out), *TINY_FLAGS, "--executor", "slurm"])
    assert "give the images with -i FOLDER or -d DATASET_ID" in line and not out.exists()


def test_the_allocation_as_sbatch_flags_and_submitit_parameters():
    o = cluster.SlurmOptions(partition="gpu", time_min=90, nodes=2, gpus_per_node=4, tasks_per_node=4,
                             cpus_per_task=8, mem_gb=64, extra={"qos": "high", "exclusive": True})
    assert o.sbatch_flags() == ["--time=90", "--nodes=2", "--ntasks-per-node=4", "--partition=gpu",
                                "--gpus-per-node=4", "--cpus-per-task=8", "--mem=65536M", "--qos=high",
                                "--exclusive"]
    p = o.submitit_parameters()
    assert (p["nodes"], p["tasks_per_node"], p["gpus_per_node"], p["cpus_per_task"], p["timeout_min"]) == (2, 4, 4, 8, 90)
    assert p["slurm_additional_parameters"] == {"qos": "high", "exclusive": True} and p["slurm_partition"] == "gpu"
    assert "gpus_per_node" not in o.submitit_parameters(gpus=False) and "--gpus-per-node=4" not in o.sbatch_flags(False)
    # SLURM warns a job this long before its limit (submitit requeues it then): 90 s, at most half a short limit
    assert [cluster.signal_delay_s(m) for m in (1, 2, 3, 60)] == [30, 60, 90, 90]


@pytest.mark.slow
def test_two_rank_pretraining_on_slurm_exports_a_loadable_checkpoint(slurm_cluster, ct_folder, tmp_path):
    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
    from nnunet_swin.networks.weights import load_pretrained_encoder, read_checkpoint

    out = tmp_path / "run"
    env = {**slurm_cluster["env"], "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "nnunet_swin", "pretrain", "-i", str(ct_folder), "-o", str(out), *TINY_FLAGS,
           "--device", "cpu", "--executor", "slurm", "--nodes", "1", "--tasks-per-node", "2",
           "--slurm-cpus-per-task", "1", "--slurm-time", "10"]
    started = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    seconds = time.time() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    job_id = re.search(r"submitted pretraining job (\d+): 1 node\(s\) x 2 task\(s\) = world size 2", proc.stdout)
    assert job_id, proc.stdout
    job_id = job_id.group(1)
    assert f"log slurm/{job_id}_0_log.out (rank 0)" in proc.stdout.replace(str(out) + "/", "").replace("run/", "")
    assert re.search(r"world size 2 \(no GPU\(s\) per node\); state (PENDING|RUNNING|submitted);", proc.stdout)
    assert f"[slurm] job {job_id} finished: 2 rank(s) ran" in proc.stdout
    # both ranks ran: one submitit log per task, the ranks' process group of two, sharded data
    for task in (0, 1):
        assert (out / "slurm" / f"{job_id}_{task}_log.out").is_file()
    log = (out / "pretrain_log.txt").read_text()
    assert "batch 1 x 2 rank(s)" in log and "ranks in sync: True (2 ranks)" in log
    obj = read_checkpoint(out / FINAL)
    assert obj["metadata"]["world_size"] == 2
    assert [r["samples"] for r in obj["pretraining"]["history"]] == [[0], [2], [4], [6]]
    assert json.loads((out / "losses.json").read_text())["world_size"] == 2
    report = load_pretrained_encoder(SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")), out / FINAL)
    assert report.complete and not report.missing
    print(f"\npretraining on SLURM (1 node x 2 CPU tasks, 4 steps): {seconds:.0f} s, job {job_id}")


@pytest.mark.slow
def test_a_partition_slurm_does_not_have_is_refused_before_anything_is_written(slurm_cluster, ct_folder, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "nnunet_swin", "pretrain", "-i", str(ct_folder), "-o", str(out), *TINY_FLAGS,
           "--executor", "slurm", "--tasks-per-node", "2", "--slurm-partition", "nope"]
    proc = subprocess.run(cmd, env=slurm_cluster["env"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "invalid partition specified: nope" in lines[0], proc.stderr
    assert not out.exists()


def test_a_requeued_job_continues_from_its_latest_checkpoint_and_says_so(tmp_path):
    from nnunet_swin.pretraining.job import PretrainJob, RunRequest

    out = tmp_path / "run"
    out.mkdir()
    job = PretrainJob(RunRequest(output=str(out), images_folder=str(tmp_path / "ct")))
    assert job.run_request().resume is False and job.run_request().progress is False
    again = job.checkpoint().function              # submitit's DelayedSubmission of the requeued job
    assert isinstance(again, PretrainJob) and again.requeued == 1
    assert again.run_request().resume is False     # nothing saved yet: it starts again
    (out / "checkpoint_latest.pth").touch()
    assert again.run_request().resume is True      # --continue
    third = again.checkpoint().function
    assert third.requeued == 2 and third.run_request().resume is True
    log = (out / "pretrain_log.txt").read_text().splitlines()
    assert log[0].endswith("job requeued; the next run starts again (no checkpoint_latest.pth saved yet; "
                           "--save-every 1 saves one every epoch)")
    assert log[1].endswith("job requeued; the next run continues from checkpoint_latest.pth (--continue)")
