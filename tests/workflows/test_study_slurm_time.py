"""A ``--slurm-time`` too short, on the real one-node SLURM (``tests/slurm_cluster.py``): SLURM's own time limit
(1 minute, the shortest it takes; submitit's warning 30 s before it) ends the jobs, submitit requeues them through
``CommandJob.checkpoint``. A job that saved ``checkpoint_latest.pth`` resumes with ``--c``; one that saved nothing is
requeued once more and then fails with one line saying what to give instead, and does not loop. The two commands are
stand-ins for ``nnUNetv2_train`` (a Python process writing nnU-Net's checkpoint files), so the test takes about two
minutes instead of a real training's startup + epoch per attempt."""
from __future__ import annotations

import sys
import time

import pytest

from nnunet_swin.workflows.study_executors import SlurmExecutor, SlurmOptions
from nnunet_swin.workflows.study_runner import Journal, Step, run_steps
from nnunet_swin.workflows.study_state import StudyState

# never saves a checkpoint (a startup + first epoch longer than the time limit)
STUCK = "import time; print('epoch 0 ...', flush=True); time.sleep(600)"
# saves checkpoint_latest.pth in its first run; finishes when resumed with --c
PROGRESS = """import sys, time, pathlib
fold = pathlib.Path(sys.argv[1])
if '--c' in sys.argv:
    print('resumed from', (fold / 'checkpoint_latest.pth').read_text(), 'with --c', flush=True)
    (fold / 'checkpoint_final.pth').write_text('final')
    sys.exit(0)
fold.mkdir(parents=True, exist_ok=True)
(fold / 'checkpoint_latest.pth').write_text('epoch 1')
print('epoch 1: checkpoint_latest.pth saved', flush=True)
time.sleep(600)
"""


def _train_step(root, name, script):
    fold = root / name / "fold_0"
    return Step(f"train {name} fold 0", "train", root / "logs" / f"train_{name}.log",
                outputs=lambda: [fold / "checkpoint_final.pth"], done=lambda: (fold / "checkpoint_final.pth").is_file(),
                command=lambda: [sys.executable, "-c", script, str(fold)], resources="gpu", resume_flag="--c")


@pytest.mark.slow
def test_a_time_limit_shorter_than_an_epoch_fails_once_requeued_and_progress_resumes_with_c(slurm_cluster, tmp_path,
                                                                                           monkeypatch):
    for k, v in slurm_cluster["env"].items():
        monkeypatch.setenv(k, v)
    root = tmp_path / "study"
    root.mkdir()
    state = StudyState("Dataset1_X", 1, "plans", "SMITPlanner", "smoke", {})
    lines: list[str] = []
    journal = Journal(state, root, lambda: state.save(root / "study.json"), lines.append)
    options = SlurmOptions(time_min=1, gpus_per_node=0, cpus_per_task=1)
    executor = SlurmExecutor(root / "slurm", options, dict(slurm_cluster["env"]), journal.rel, lines.append,
                             poll_s=2.0)
    steps = [_train_step(root, "stuck", STUCK), _train_step(root, "progress", PROGRESS)]
    started = time.time()
    outcome = run_steps(steps, executor, journal)
    seconds = time.time() - started
    assert outcome == {"train stuck fold 0": "failed", "train progress fold 0": "done"}, "\n".join(lines)

    stuck = state.steps["train stuck fold 0"]
    assert stuck.reason.startswith("--slurm-time 1 min is shorter than one training epoch up to its first checkpoint: "
                                   "2 attempts reached the time limit without writing checkpoint_latest.pth; give a "
                                   "longer --slurm-time (e.g. 00:10:00)"), stuck.reason
    assert "\n" not in stuck.reason
    log = (root / "logs" / "train_stuck.log").read_text()
    assert log.count("$ ") == 2 and "requeued once more (from the start)" in log      # two runs, then no more
    assert "--c" not in log.split("$ ")[2].splitlines()[0]                             # nothing to resume from

    log = (root / "logs" / "train_progress.log").read_text()
    assert "checkpoint_latest.pth saved during it: requeued; the next run resumes with --c" in log
    assert "resumed from epoch 1 with --c" in log and (root / "progress" / "fold_0" / "checkpoint_final.pth").is_file()
    job = state.steps["train progress fold 0"].attempts[-1].job_id
    print(f"\ntoo short --slurm-time on SLURM: {seconds:.0f} s, jobs {stuck.attempts[-1].job_id} (stuck), {job} "
          f"(progress)")


def test_the_requeue_rule_without_slurm(tmp_path):
    """CommandJob.checkpoint's decisions, as submitit calls it at the time limit (the job's clock set back)."""
    from nnunet_swin.workflows.study_executors import CommandJob, TimeLimitTooShort, too_short_line

    latest, log = tmp_path / "fold_0" / "checkpoint_latest.pth", tmp_path / "train.log"
    job = CommandJob(["nnUNetv2_train", "1", "3d_fullres", "0"], {}, str(log), "--c", [str(latest)], time_min=1)
    job._started -= 60
    second = job.checkpoint().function                     # no checkpoint: once more, from the start
    assert second.attempt == 2 and "--c" not in second.cmd
    second._started -= 60
    with pytest.raises(TimeLimitTooShort) as e:            # again none: no third run
        second.checkpoint()
    assert too_short_line(f"Traceback ...\nnunet_swin.x.TimeLimitTooShort: {e.value}\n") == str(e.value)
    assert str(e.value).startswith("--slurm-time 1 min is shorter than one training epoch")
    latest.parent.mkdir()
    latest.write_text("epoch 1")                           # progress during the run: resumed with --c, count reset
    third = second.checkpoint().function
    assert third.cmd[-1] == "--c" and third.attempt == 1
    preempted = CommandJob(["x"], {}, str(log), "--c", [str(tmp_path / "none")], time_min=60)
    assert preempted.checkpoint().function.attempt == 1    # early in its time: a preemption, requeued, not counted
    assert log.read_text().count("[nnunet-swin study]") == 4
