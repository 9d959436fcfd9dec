"""JobRun in process: upstream outputs, siblings, blocking and unblocking, plan changes on load,
with toy steps and the fake runner (no process)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autogenv2.errors import PlanConflict
from autogenv2.job import JobRun
from autogenv2.plan import Job, Step
from autogenv2.runners.fake import FakeRunner, finished, running, toy_blocks
from autogenv2.states import State
from autogenv2.status import JobStatus
from engine_kit import context, toy_step

OK = (finished(0, write=toy_blocks()),)


def job(*steps: Step, variables: dict[str, object] | None = None) -> Job:
    return Job(id="j1", steps=list(steps), variables=variables or {})


def passes(run: JobRun, fake: FakeRunner, count: int = 10) -> list[str]:
    """Passes as the ensemble makes them: one poll of every attempt in flight, then advance."""
    actions: list[str] = []
    for _ in range(count):
        ctx = context(fake)
        attempts = {token: (rid, directory) for _, token, rid, directory in run.active_attempts()}
        ctx.polled = fake.poll(attempts) if attempts else {}
        actions += run.advance(ctx)
        if run.is_finished():
            break
    return actions


def states(run: JobRun) -> dict[str, str]:
    assert run.status is not None
    return {e.name: e.state.value for e in run.status.elements}


def test_load_creates_then_reads_the_status(tmp: Path) -> None:
    run = JobRun(job(toy_step("a"), toy_step("b")), tmp)
    assert run.load() == []
    run.save()
    saved = JobStatus.load(tmp / "j1")
    assert saved is not None and [e.name for e in saved.elements] == ["a", "b"]
    assert [e.state for e in saved.elements] == [State.planned, State.planned]
    again = JobRun(job(toy_step("a"), toy_step("b")), tmp)
    assert again.load() == [] and again.status == saved


def test_outputs_flow_downstream_and_siblings_run_side_by_side(tmp: Path) -> None:
    fake = FakeRunner(default=(running(), *OK))
    run = JobRun(job(toy_step("a"), toy_step("b", after="a"), toy_step("c", after="a"),
                     toy_step("d", after="b")), tmp)
    run.load()
    assert run.chain("d") == ["a", "b", "d"]
    first = passes(run, fake, 1)
    assert first == ["j1/a: wrote inputs", "j1/a: started attempt 1 (fake fake-1)"]
    assert not run.ready_to_step("b") and run.manager("b").inputs == {}
    passes(run, fake, 2)
    assert states(run)["a"] == "done" and {states(run)[n] for n in "bc"} == {"running"}
    assert len(run.active_attempts()) == 2  # the siblings are in flight at once
    inputs = run.manager("d").inputs
    assert inputs == {"hdf": tmp / "j1" / "a" / "blocks.json"}  # d sees a's output through b
    assert run.manager("b").origins == {"hdf": ("a", 1)}
    passes(run, fake)
    assert set(states(run).values()) == {"done"} and run.is_finished()
    saved = JobStatus.load(tmp / "j1")
    assert saved is not None and saved.element("d").outputs == {"hdf": "d/blocks.json"}


def test_failure_blocks_everything_downstream(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(1, stdout="RuntimeError: no convergence"),))
    run = JobRun(job(toy_step("a"), toy_step("b"), toy_step("c"), toy_step("side", after="a")), tmp)
    run.load()
    actions = passes(run, fake)
    assert states(run) == {"a": "failed", "b": "blocked", "c": "blocked", "side": "blocked"}
    assert run.status is not None
    why = "toy run raised an error: RuntimeError: no convergence"
    assert run.status.element("b").reason == f"blocked: a failed ({why})"
    assert run.status.element("c").reason == run.status.element("b").reason  # the same cause, not "b blocked"
    assert "j1/c: blocked: a failed (toy run raised an error: RuntimeError: no convergence)" in actions
    assert run.is_finished() and len(fake.started) == 1
    assert passes(run, fake) == [] and len(fake.started) == 1  # nothing more happens


def test_a_plan_change_unblocks_the_downstream(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(1),))
    run = JobRun(job(toy_step("a"), toy_step("b")), tmp)
    run.load()
    passes(run, fake)
    assert states(run) == {"a": "failed", "b": "blocked"}
    fake.default = OK
    fixed = JobRun(job(toy_step("a", seed=2), toy_step("b")), tmp)
    messages = fixed.load()
    assert messages[0] == "j1/a: seed None → 2 (physical input: redo); redone, old run kept in a.archived-1"
    assert states(fixed) == {"a": "planned", "b": "planned"}  # b is redone with a (it was blocked)
    assert (tmp / "j1" / "a.archived-1").is_dir()
    passes(fixed, fake)
    assert states(fixed) == {"a": "done", "b": "done"}


def test_unblocked_when_the_upstream_is_reopened(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(1),))
    run = JobRun(job(toy_step("a"), toy_step("b")), tmp)
    run.load()
    passes(run, fake)
    assert run.status is not None
    element = run.status.element("a")
    element.state, element.failures = State.ready, 0  # what --retry-failed does to it
    assert run.update_blocked() == ["j1/b: unblocked"]
    assert states(run) == {"a": "ready", "b": "planned"}
    assert [e["event"] for e in run.status.element("b").events] == ["blocked", "unblocked"]
    fake.default = OK
    passes(run, fake)
    assert states(run) == {"a": "done", "b": "done"}


def test_variables_and_reader_options_applied_on_load(tmp: Path) -> None:
    fake = FakeRunner(default=OK)
    run = JobRun(job(toy_step("a"), variables={"r": 1.4}), tmp)
    run.load()
    passes(run, fake)
    assert run.status is not None
    error = run.status.element("a").result["error"]
    again = JobRun(job(toy_step("a", target_error=error / 3, target_confidence=0.5), variables={"r": 1.5}),
                   tmp)
    messages = again.load()
    assert any(m.startswith("j1/a: target_confidence None → 0.5 (re-read against the new demand); "
                            "target_error None → ") for m in messages)
    assert "j1: variables now {'r': 1.5}" in messages
    assert any(m.startswith("j1/a: re-read: needs more") for m in messages)
    saved = json.loads((tmp / "j1" / "status.json").read_text())
    assert saved["variables"] == {"r": 1.5} and saved["elements"][0]["state"] == "needs_more"
    passes(again, fake)
    assert states(again) == {"a": "done"} and len(fake.started) >= 2


def test_renamed_step_is_refused_on_load(tmp: Path) -> None:
    first = JobRun(job(toy_step("a")), tmp)
    first.load()
    first.save()
    with pytest.raises(PlanConflict, match="steps were \\['a'\\], the plan now has \\['b'\\]"):
        JobRun(job(toy_step("b")), tmp).load()
