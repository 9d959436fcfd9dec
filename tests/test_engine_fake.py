"""The fake runner itself (runners/fake.py), and ``autogenv2 cancel`` driven through it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autogenv2 import ensemble
from autogenv2.cancel import cancel_jobs
from autogenv2.errors import PlanError, RunnerError
from autogenv2.runners import BACKENDS, get_runner
from autogenv2.runners.base import RunRequest
from autogenv2.runners.fake import FakeRunner, finished, lost, queued, running, toy_blocks, walltime
from autogenv2.status import JobStatus
from engine_kit import toy_plan, toy_step


def request(directory: Path, token: str) -> RunRequest:
    directory.mkdir(parents=True, exist_ok=True)
    return RunRequest(directory=directory, argv=["prog"], token=token)


def test_registered_and_scripted_per_directory_and_token(tmp: Path) -> None:
    runner = get_runner("fake", max_active=2)
    assert BACKENDS["fake"] == "FakeRunner" and isinstance(runner, FakeRunner) and runner.max_active == 2
    runner.script(tmp / "a", [queued("QOSMaxJobsPerUserLimit"), running(), finished(3)], [lost()])
    runner.script_token("t-special", [walltime()])
    ids = [runner.start(request(tmp / "a", "t1")), runner.start(request(tmp / "a", "t2")),
           runner.start(request(tmp / "a", "t-special")), runner.start(request(tmp / "b", "t3"))]
    assert ids == ["fake-1", "fake-2", "fake-3", "fake-4"] and runner.live() == 2  # t1 and t3
    attempts = {token: ("", tmp) for token in ("t1", "t2", "t-special", "t3", "nobody")}
    first = runner.poll(attempts)
    assert (first["t1"].phase, first["t1"].reason, first["t1"].scheduler_state) == (
        "queued", "QOSMaxJobsPerUserLimit", "PENDING")
    assert first["t2"].phase == "lost" and first["nobody"].phase == "lost"
    assert (first["t-special"].exit_code, first["t-special"].reason) == (-15, "walltime")
    assert first["t3"].phase == "running" and first["t3"].extra == {"runner_id": "fake-4"}  # the default
    runner.poll(attempts)
    third = runner.poll(attempts)
    assert (third["t1"].phase, third["t1"].exit_code) == ("finished", 3)
    assert third["t1"].ended_at - third["t1"].started_at == pytest.approx(60.0)  # type: ignore[operator]
    assert runner.poll(attempts)["t1"].exit_code == 3 and runner.live() == 0  # the last outcome stays
    assert len(runner.polls) == 4 and runner.polls[0] == list(attempts)


def test_never_starts_a_token_twice_and_refuses_on_demand(tmp: Path) -> None:
    runner = FakeRunner()
    runner.start(request(tmp, "t1"))
    with pytest.raises(RunnerError, match="t1 was already started"):
        runner.start(request(tmp, "t1"))
    runner.refuse.append("sbatch: error: QOSMaxSubmitJobPerUserLimit")
    with pytest.raises(RunnerError, match="QOSMaxSubmitJobPerUserLimit"):
        runner.start(request(tmp, "t2"))
    assert [r.token for r in runner.started] == ["t1"]
    runner.down = "connection refused"
    with pytest.raises(RunnerError, match="connection refused"):
        runner.poll({"t1": ("fake-1", tmp)})


def test_cancel_ends_a_live_attempt_only(tmp: Path) -> None:
    runner = FakeRunner(default=(running(),))
    runner.script(tmp / "done", [finished(0)])
    live, done = runner.start(request(tmp / "live", "t1")), runner.start(request(tmp / "done", "t2"))
    attempts = {"t1": (live, tmp / "live"), "t2": (done, tmp / "done")}
    runner.poll(attempts)
    runner.cancel(live)
    runner.cancel(done)  # finished already: not an error, nothing changes
    after = runner.poll(attempts)
    assert (after["t1"].phase, after["t1"].exit_code, after["t1"].reason) == ("finished", -15, "cancelled")
    assert (after["t2"].exit_code, after["t2"].reason) == (0, "") and runner.cancelled == [live, done]


def test_outputs_and_stdout_are_written_once_when_reported(tmp: Path) -> None:
    runner = FakeRunner()
    calls: list[str] = []
    runner.script(tmp, [running(write=lambda r: calls.append(r.token)),
                        finished(1, stdout="ValueError: x", write=lambda r: calls.append("end"))])
    runner.start(request(tmp, "t1"))
    for _ in range(4):
        runner.poll({"t1": ("", tmp)})
    assert calls == ["t1", "end"] and (tmp / "stdout.txt").read_text() == "ValueError: x\n"


def test_toy_blocks_continue_the_same_series(tmp: Path) -> None:
    params = {"output": "blocks.json", "nblocks": 12, "attempt_limit": None, "mean": -1.0, "sigma": 0.1,
              "phi": 0.5, "seed": 4, "transient": 0.0, "transient_blocks": 5.0, "tstep": 0.01,
              "stable_tstep": 0.05}
    whole, parts = tmp / "whole", tmp / "parts"
    for directory in (whole, parts):
        directory.mkdir()
        (directory / "params.json").write_text(json.dumps(params))
    toy_blocks()(request(whole, "w"))
    for _ in range(3):
        toy_blocks(stop=5)(request(parts, "p"))  # killed after 5 blocks, twice, then it reaches 12
    one, three = (json.loads((d / "blocks.json").read_text()) for d in (whole, parts))
    assert len(one["energy"]) == 12 and one == three  # bitwise the same however many attempts
    assert one["weight"] == [1.0] * 12 and abs(sum(one["energy"]) / 12 + 1.0) < 0.2


def test_cancel_stops_running_attempts_and_blocks_the_rest(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (running(),)
    plan = toy_plan(tmp / "runs", {"x": [toy_step("a", "local"), toy_step("b", "local")],
                                   "y": [toy_step("a", "local")]})
    ensemble.reconcile(plan)
    with pytest.raises(PlanError, match="job 'z' is not in the plan"):
        cancel_jobs(plan, ["z"])
    messages = cancel_jobs(plan, ["x"])
    why = "cancelled by user (run --retry-failed to resume)"
    assert messages == ["x/a: cancelled local fake-1", f"x/b: blocked: a failed ({why})"]
    assert fake.cancelled == ["fake-1"]
    status = JobStatus.load(tmp / "runs" / "x")
    assert status is not None and [e.state.value for e in status.elements] == ["failed", "blocked"]
    assert cancel_jobs(plan, ["x"]) == ["nothing was running"]
    fake.default = (finished(0, write=toy_blocks()),)
    ensemble.reconcile(plan, retry_failed=True)
    final = ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=5)
    assert final.states == {"done": 2, "running": 1}  # x resumed and finished; y's attempt runs on
    assert len(fake.started) == 4 and fake.cancelled == ["fake-1"]
