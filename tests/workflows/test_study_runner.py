"""The study's runner on a fake executor: done predicates, skipping, resuming, a failing step recorded, queued jobs
picked up by a later call; and the SLURM job object's requeue with nnU-Net's --c."""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from nnunet_swin.cluster import last_error_line, parse_sbatch_options, parse_time
from nnunet_swin.workflows.study_executors import CommandJob
from nnunet_swin.workflows.study_runner import Journal, Step, run_steps
from nnunet_swin.workflows.study_state import Attempt, StudyState, read_state
from nnunet_swin.errors import UserError


@dataclass
class _Handle:
    pending: Attempt
    job_id: str | None = None
    queued: bool = False

    def result(self) -> Attempt:
        return self.pending


class FakeExecutor:
    """Runs a step by writing its outputs (or not, for the names in ``fail``); ``queue``: submit and leave."""

    name = "fake"

    def __init__(self, fail=(), queue=False):
        self.fail, self.queue, self.started, self.previous = set(fail), queue, [], {}

    def start(self, steps, previous):
        handles = []
        for s in steps:
            self.started.append(s.name)
            self.previous[s.name] = previous.get(s.name)
            cmd = " ".join(s.command())
            if self.queue:
                handles.append(_Handle(Attempt("fake", "queued", cmd, "log", job_id=f"7_{len(handles)}"),
                                       f"7_{len(handles)}", True))
            elif s.name in self.fail:
                handles.append(_Handle(Attempt("fake", "failed", cmd, "log", exit_status=1,
                                               error=last_error_line("epoch 3\nRuntimeError: out of memory\n"))))
            else:
                for p in s.outputs():
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_text("x")
                old = previous.get(s.name)     # a job of an earlier call: reattached, the same job id
                job = old.job_id if old is not None and old.outcome == "queued" else None
                handles.append(_Handle(Attempt("fake", "done", cmd, "log", exit_status=0, job_id=job), job))
        return handles


def _table(root: Path) -> list[Step]:
    def step(name, needs=(), inputs=(), **kw):
        return Step(name, name.split()[0], root / "logs" / f"{name}.log", outputs=lambda: [root / f"{name}.out"],
                    inputs=lambda: [root / f"{n}.out" for n in inputs], command=lambda: ["run", name],
                    needs=tuple(needs), **kw)

    return [step("plan"),
            step("train A", ["plan"], done=lambda: (root / "train A.out").is_file(), done_because="final"),
            step("train B", ["plan"]),
            step("evaluate A", ["train A"], ["train A"]),
            step("evaluate B", ["train B"], ["train B"]),
            step("compare", ["evaluate A", "evaluate B"], ["evaluate A", "evaluate B"], blocking=False,
                 skip=lambda: None if len(list(root.glob("evaluate *.out"))) >= 2 else "comparing needs 2")]


def _journal(root: Path) -> tuple[Journal, list[str]]:
    said = []
    state = StudyState("Dataset1_X", 1, "P", "SMITPlanner", "smoke", {})
    return Journal(state, root, lambda: state.save(root / "study.json"), said.append), said


def test_runs_in_order_then_skips_everything_done(tmp_path):
    journal, said = _journal(tmp_path)
    ex = FakeExecutor()
    outcome = run_steps(_table(tmp_path), ex, journal)
    assert set(outcome.values()) == {"done"} and journal.attempts == 6
    assert ex.started.index("plan") < ex.started.index("train A") < ex.started.index("evaluate A") \
        < ex.started.index("compare")
    again, said = _journal(tmp_path)
    ex2 = FakeExecutor()
    assert set(run_steps(_table(tmp_path), ex2, again).values()) == {"done"}
    assert ex2.started == [] and again.attempts == 0
    assert "[train A] skipped: done (final)" in said
    # an input newer than its output makes the step (and only it, then its dependants) run again
    os.utime(tmp_path / "train B.out", (2e9, 2e9))
    ex3 = FakeExecutor()
    run_steps(_table(tmp_path), ex3, _journal(tmp_path)[0])
    assert ex3.started == ["evaluate B", "compare"]


def test_a_failing_step_is_recorded_blocks_its_dependants_and_the_rest_goes_on(tmp_path):
    journal, said = _journal(tmp_path)
    outcome = run_steps(_table(tmp_path), FakeExecutor(fail={"train B"}), journal)
    assert outcome["train B"] == "failed" and outcome["evaluate B"] == "blocked"
    assert outcome["evaluate A"] == "done" and outcome["compare"] == "skipped"
    state = read_state(tmp_path)
    record = state.steps["train B"]
    assert record.status == "failed" and record.attempts[-1].exit_status == 1
    assert record.attempts[-1].error == "RuntimeError: out of memory"
    assert state.steps["evaluate B"].reason == "needs train B (failed)"
    assert state.steps["compare"].reason == "comparing needs 2"
    assert any("FAILED: RuntimeError: out of memory" in line for line in said)
    # the next call retries the failed step only, and keeps its first attempt on record
    ex = FakeExecutor()
    journal2, _ = _journal(tmp_path)
    journal2.state = state
    run_steps(_table(tmp_path), ex, journal2)
    assert ex.started == ["train B", "evaluate B", "compare"]
    assert [a.outcome for a in journal2.state.steps["train B"].attempts] == ["failed", "done"]


def test_queued_jobs_are_left_and_picked_up_by_the_next_call(tmp_path):
    journal, _ = _journal(tmp_path)
    outcome = run_steps(_table(tmp_path), FakeExecutor(queue=True), journal, wait=False)
    assert outcome == {"plan": "queued"}              # nothing that needs the plan is started
    state = read_state(tmp_path)
    assert state.steps["plan"].status == "queued" and state.steps["plan"].attempts[-1].job_id == "7_0"
    journal2, _ = _journal(tmp_path)
    journal2.state = state
    ex = FakeExecutor()
    run_steps(_table(tmp_path), ex, journal2)
    assert ex.previous["plan"].job_id == "7_0"         # the executor is handed the earlier job to reattach to
    assert [a.outcome for a in journal2.state.steps["plan"].attempts] == ["done"]


def test_state_round_trips_through_study_json(tmp_path):
    journal, _ = _journal(tmp_path)
    run_steps(_table(tmp_path), FakeExecutor(fail={"plan"}), journal)
    back = read_state(tmp_path)
    assert back == journal.state
    assert back.steps["train A"].status == "blocked"
    (tmp_path / "study.json").write_text('{"kind": "something else"}')
    with pytest.raises(UserError, match="not written by `nnunet-swin study`"):
        read_state(tmp_path)


def test_a_requeued_job_resumes_with_c(tmp_path):
    log = tmp_path / "train.log"
    job = CommandJob(["nnUNetv2_train", "1", "3d_fullres", "0"], {"A": "1"}, str(log), "--c")
    delayed = job.checkpoint()
    assert delayed.function.cmd[-1] == "--c" and delayed.function.resumed().cmd.count("--c") == 1
    assert "requeued" in log.read_text()
    pickle.loads(pickle.dumps(delayed))                # submitit pickles it into the job folder
    code = CommandJob(["sh", "-c", "echo hello; exit 3"], dict(os.environ), str(log))()
    assert code["exit_status"] == 3 and "hello" in code["log_tail"]


def test_slurm_option_parsing():
    assert [parse_time(t) for t in ("90", "01:30:00", "1-00", "2-01:00:00", "0:30")] == [90, 90, 1440, 2940, 1]
    with pytest.raises(UserError, match="at least a minute"):
        parse_time("0")
    assert parse_sbatch_options("--qos=high --exclusive") == {"qos": "high", "exclusive": True}
    with pytest.raises(UserError, match="not a long sbatch option"):
        parse_sbatch_options("-q high")
