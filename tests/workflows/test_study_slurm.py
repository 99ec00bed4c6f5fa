"""The study on a real one-node SLURM (``conftest.slurm_cluster``): the smoke preset end to end through submitit,
then a second call that finds everything done; a partition SLURM does not have refused in one line before any
work. Skipped, with the reason, where SLURM cannot start."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

DATASET = 949


@pytest.fixture(scope="module")
def slurm_study(slurm_cluster, plan_smoke_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_study")
    env = {**plan_smoke_dataset(root, DATASET)["env"], "SLURM_CONF": slurm_cluster["env"]["SLURM_CONF"]}
    cmd = [sys.executable, "-m", "nnunet_swin", "study", "-d", str(DATASET), "--preset", "smoke", "-o",
           str(root / "study"), "-np", "1", "--executor", "slurm", "--slurm-gpus-per-job", "0",
           "--slurm-cpus-per-job", "1", "--slurm-time", "20"]
    t0 = time.time()
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    seconds = time.time() - t0
    t0 = time.time()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return {"root": root, "env": env, "cmd": cmd, "first": first, "second": second, "seconds": seconds,
            "second_seconds": time.time() - t0}


@pytest.mark.slow
def test_smoke_study_on_slurm_then_nothing_to_do(slurm_study):
    first, second = slurm_study["first"], slurm_study["second"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = slurm_study["root"] / "study"
    state = json.loads((out / "study.json").read_text())
    assert state["executor"] == "slurm"
    assert {k: v["status"] for k, v in state["arms"].items()} == {"ACT": "done", "Base": "done"}
    train = [state["steps"][f"train {a} fold 0"]["attempts"][-1] for a in ("ACT", "Base")]
    assert all(a["executor"] == "slurm" and a["outcome"] == "done" for a in train)
    # the two training jobs went out as one job array: one job id, two tasks
    assert len({a["job_id"].split("_")[0] for a in train}) == 1 and all("_" in a["job_id"] for a in train)
    assert all((out / a["job_log"]).is_file() and (out / a["log"]).is_file() for a in train)
    for step in ("plan", "subtypes", "predict ACT", "evaluate Base", "compare table2", "adi", "cka ACT", "report"):
        assert state["steps"][step]["status"] == "done", (step, state["steps"][step])
    assert state["steps"]["plan"]["reason"].startswith("skipped: ")          # planned before: not repeated
    assert (out / "comparison" / "table2" / "comparison_table.csv").is_file() and (out / "report.html").is_file()
    print(f"\nsmoke study on SLURM: {slurm_study['seconds']:.0f} s, jobs "
          f"{sorted({a['job_id'] for s in state['steps'].values() for a in s.get('attempts', []) if 'job_id' in a})}"
          f"; second call {slurm_study['second_seconds']:.1f} s")
    # the second call submits nothing and says so
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "nothing to do" in second.stdout and "[slurm] submitted" not in second.stdout
    assert "[train ACT fold 0] skipped: done (checkpoint_final.pth present)" in second.stdout
    again = json.loads((out / "study.json").read_text())
    assert again["steps"]["train ACT fold 0"]["attempts"] == state["steps"]["train ACT fold 0"]["attempts"]


@pytest.mark.slow
def test_a_partition_slurm_does_not_have_is_refused_before_any_work(slurm_study, tmp_path):
    cmd = slurm_study["cmd"][:]
    cmd[cmd.index("-o") + 1] = str(tmp_path / "elsewhere")
    proc = subprocess.run(cmd + ["--slurm-partition", "nope"], env=slurm_study["env"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and not (tmp_path / "elsewhere").exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid partition specified: nope" in lines[0], proc.stderr
