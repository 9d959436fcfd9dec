"""Every plan-change rule of planchange.py, in process on toy jobs run by the fake runner."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autogenv2.errors import PlanConflict
from autogenv2.job import JobRun
from autogenv2.plan import Job, Step
from autogenv2.planchange import archive, classify, new_element, reconcile_steps
from autogenv2.runners.fake import FakeRunner, Outcome, finished, running, toy_blocks
from autogenv2.states import State
from autogenv2.status import JobStatus
from engine_kit import passes_until_done, toy_step


def finished_job(root: Path, *steps: Step, script: tuple[Outcome, ...] = (finished(0, write=toy_blocks()),)
                 ) -> JobStatus:
    """Run a job of ``steps`` to the end with the fake runner; its status."""
    fake = FakeRunner(default=script)
    run = JobRun(Job(id="j", steps=list(steps)), root)
    run.load()
    return passes_until_done(run, fake, 20)


def reconcile(status: JobStatus, root: Path, *steps: Step) -> tuple[list[str], set[str]]:
    return reconcile_steps(status, list(Job(id="j", steps=list(steps)).steps), root / "j")


def test_classify_each_kind_of_key() -> None:
    old = toy_step().spec()
    assert classify(old, toy_step()).described == []
    run = classify(old, toy_step(max_retries=7, resources={"walltime": "1:00:00"}))
    assert (run.redo, run.rejudge) == (False, False)
    assert run.described == ["resources changed (applies to the next attempt)",
                             "max_retries changed (applies to the next attempt)"]
    reader = classify(old, toy_step(target_error=0.001))
    assert (reader.redo, reader.rejudge, reader.described) == (False, True, [
        "target_error None → 0.001 (re-read against the new demand)"])
    sampling = classify(old, toy_step(nblocks=50))
    assert (sampling.redo, sampling.rejudge, sampling.described) == (False, True, [
        "nblocks 20 → 50 (same run, new total)"])
    physical = classify(old, toy_step(sigma=0.02))
    assert (physical.redo, physical.described) == (True, ["sigma 0.01 → 0.02 (physical input: redo)"])
    code = classify({**old, "method": "vmc", "code": "pyqmc"}, toy_step())
    assert (code.redo, code.described) == (True, ["code/method pyqmc/vmc → toy/mc"])


def test_step_added_is_planned(tmp: Path) -> None:
    status = finished_job(tmp, toy_step("a"))
    messages, rejudge = reconcile(status, tmp, toy_step("a"), toy_step("b"))
    assert messages == ["j/b: added"] and rejudge == set()
    assert [(e.name, e.state) for e in status.elements] == [("a", State.done), ("b", State.planned)]


@pytest.mark.parametrize("names", [["b", "a"], ["b"], ["a", "c"]], ids=["reordered", "removed", "renamed"])
def test_removed_renamed_or_reordered_steps_are_refused(tmp: Path, names: list[str]) -> None:
    status = finished_job(tmp, toy_step("a"), toy_step("b"))
    with pytest.raises(PlanConflict, match=re.escape(f"steps were ['a', 'b'], the plan now has {names!r}")):
        reconcile(status, tmp, *[toy_step(n) for n in names])
    assert [e.name for e in status.elements] == ["a", "b"]


def test_reader_option_rereads(tmp: Path) -> None:
    status = finished_job(tmp, toy_step("a"))
    messages, rejudge = reconcile(status, tmp, toy_step("a", warmup=4))
    assert messages == ["j/a: warmup None → 4 (re-read against the new demand)"] and rejudge == {"a"}
    assert status.element("a").spec["options"]["warmup"] == 4 and status.element("a").state is State.done


def test_sampling_option_continues_the_run(tmp: Path) -> None:
    fake_root = tmp
    finished_job(fake_root, toy_step("a"))
    run = JobRun(Job(id="j", steps=[toy_step("a", nblocks=30)]), fake_root)
    messages = run.load()
    assert messages[0] == "j/a: nblocks 20 → 30 (same run, new total)" and len(messages) == 2
    assert messages[1].startswith("j/a: re-read: needs more (stopped after 20 of 30 blocks")
    assert run.status is not None and run.status.element("a").writer["nblocks"] == 30
    assert len(run.status.element("a").attempts) == 1 and not (fake_root / "j" / "a.archived-1").exists()


def test_lowered_sampling_keeps_what_ran(tmp: Path) -> None:
    finished_job(tmp, toy_step("a"))
    run = JobRun(Job(id="j", steps=[toy_step("a", nblocks=10)]), tmp)
    run.load()
    assert run.status is not None
    element = run.status.element("a")
    assert element.state is State.done and element.result["blocks"] == 20


def test_run_option_applies_from_the_next_attempt(tmp: Path) -> None:
    status = finished_job(tmp, toy_step("a"))
    attempts = list(status.element("a").attempts)
    messages, rejudge = reconcile(status, tmp, toy_step("a", runner="cluster", max_attempts=9))
    later = "changed (applies to the next attempt)"
    assert messages == [f"j/a: runner {later}; max_attempts {later}"]
    assert rejudge == set() and status.element("a").state is State.done
    assert status.element("a").attempts == attempts and status.element("a").spec["runner"] == "cluster"


def test_physical_option_redoes_the_element_and_all_it_feeds(tmp: Path) -> None:
    status = finished_job(tmp, toy_step("base"), toy_step("a"), toy_step("b"), toy_step("c"),
                          toy_step("side", after="a"))
    messages, _ = reconcile(status, tmp, toy_step("base"), toy_step("a", seed=9), toy_step("b"),
                            toy_step("c"), toy_step("side", after="a"))
    assert messages[0] == "j/a: seed None → 9 (physical input: redo); redone, old run kept in a.archived-1"
    assert messages[1] == "j/b: its input step 'a' is redone; redone, old run kept in b.archived-1"
    assert [e.state.value for e in status.elements] == ["done", "planned", "planned", "planned", "planned"]
    for name in ("a", "b", "c", "side"):
        element = status.element(name)
        assert element.attempts == [] and element.archived == [f"{name}.archived-1"]
        assert (tmp / "j" / f"{name}.archived-1" / "blocks.json").exists() and not (tmp / "j" / name).exists()
    assert status.element("a").events[-1]["event"] == "archived"


def test_change_while_running_is_refused(tmp: Path) -> None:
    status = finished_job(tmp, toy_step("a"), script=(running(),))
    assert status.element("a").state is State.running
    with pytest.raises(PlanConflict, match="'a': sigma 0.01 → 0.5 .* while an attempt is running; wait"):
        reconcile(status, tmp, toy_step("a", sigma=0.5))
    messages, _ = reconcile(status, tmp, toy_step("a", max_retries=1))  # a run option is fine
    assert messages == ["j/a: max_retries changed (applies to the next attempt)"]


def test_archive_picks_a_free_name(tmp: Path) -> None:
    element = new_element(toy_step("a"))
    (tmp / "a").mkdir()
    (tmp / "a.archived-1").mkdir()
    (tmp / "a" / "x").write_text("old")
    element.state, element.reason = State.failed, "broken"
    assert archive(element, tmp) == "a.archived-2"
    assert (tmp / "a.archived-2" / "x").read_text() == "old" and not (tmp / "a").exists()
    assert (element.state, element.reason, element.archived) == (State.planned, "", ["a.archived-2"])
    assert archive(element, tmp) == "a.archived-3"  # nothing to move: still recorded
    assert element.archived == ["a.archived-2", "a.archived-3"]
