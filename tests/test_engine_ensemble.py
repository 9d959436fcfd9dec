"""The reconcile pass in process (ensemble.reconcile / reconcile_file / watch): the fake runner stands
behind every machine profile, so a pass over many toy jobs takes milliseconds."""
from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock

from autogenv2 import ensemble
from autogenv2.errors import EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_RUNNING, LockedError
from autogenv2.index import Index
from autogenv2.plan import Plan
from autogenv2.runners.fake import FakeRunner, finished, queued, running, toy_blocks
from autogenv2.status import JobStatus
from engine_kit import toy_plan, toy_step

OK = finished(0, write=toy_blocks())


def plan_of(root: Path, jobs: int = 2, runner: str = "local", machines: Path | None = None) -> Plan:
    return toy_plan(root, {f"j{i}": [toy_step("a", runner), toy_step("b", runner)] for i in range(jobs)},
                    machines)


def element_states(root: Path, job: str) -> list[str]:
    status = JobStatus.load(root / job)
    assert status is not None
    return [e.state.value for e in status.elements]


def test_pass_ensures_dirs_polls_once_and_steps(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (queued(), running(), OK)
    plan = plan_of(tmp / "runs")
    first = ensemble.reconcile(plan)
    assert (tmp / "runs" / "j0" / "status.json").exists() and (tmp / "runs" / "j1" / "a").is_dir()
    assert first.actions == ["j0/a: wrote inputs", "j0/a: started attempt 1 (local fake-1)",
                             "j1/a: wrote inputs", "j1/a: started attempt 1 (local fake-2)"]
    assert first.states == {"running": 2, "planned": 2} and first.exit_code == EXIT_RUNNING
    assert fake.polls == []  # nothing was in flight at the start of the pass
    second = ensemble.reconcile(plan)
    assert len(fake.polls) == 1 and len(fake.polls[0]) == 2  # one batched poll for both jobs
    assert second.actions == ["j0/a: attempt 1 queued", "j1/a: attempt 1 queued"]
    assert len(second.progress) == 2 and second.progress[0].startswith("j0/a: 0/20 blocks")
    final = ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=10)
    assert final.finished and final.exit_code == EXIT_OK and final.states == {"done": 4}
    assert len(fake.started) == 4 and all(len(p) <= 2 for p in fake.polls)
    with Index(plan.root) as index:
        assert [row["state"] for row in index.rows()] == ["done"] * 4 and index.meta("dirty") == "0"


def test_idempotent_rerun_is_a_no_op(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (OK,)
    plan = plan_of(tmp / "runs")
    ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=10)
    status_file = tmp / "runs" / "j0" / "status.json"

    def snapshot() -> tuple[int, bytes, int, int]:
        return status_file.stat().st_mtime_ns, status_file.read_bytes(), len(fake.started), len(fake.polls)

    before = snapshot()
    again = ensemble.reconcile(plan)
    assert again.actions == [] and again.messages == [] and again.exit_code == EXIT_OK
    assert snapshot() == before


def test_plan_file_no_op_answers_from_the_index(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (OK,)
    plan_file = tmp / "plan.toml"
    plan_file.write_text('root = "runs"\n[[steps]]\nname = "a"\ncode = "toy"\nmethod = "mc"\nnblocks = 20\n'
                         'sigma = 0.01\nseconds_per_block = 0.0\n[[jobs]]\nid = "x"\n[[jobs]]\nid = "y"\n')
    report = ensemble.watch(plan_file, interval=0, on_pass=lambda report: None, max_passes=5)
    assert report.states == {"done": 2}
    started = len(fake.started)
    fast, root = ensemble.reconcile_file(plan_file)
    assert root == tmp / "runs" and fast.states == {"done": 2} and fast.actions == [] and fast.failed == []
    assert len(fake.started) == started
    plan_file.write_text(plan_file.read_text().replace("nblocks = 20", "nblocks = 24"))
    grown, _ = ensemble.reconcile_file(plan_file)  # another plan: a real pass, which continues the runs
    assert any("nblocks 20 → 24 (same run, new total)" in m for m in grown.messages)
    assert grown.states == {"running": 2}


def test_failure_and_retry_failed(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (finished(1, stdout="ValueError: boom"),)
    plan = plan_of(tmp / "runs", jobs=1)
    report = ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=5)
    assert report.exit_code == EXIT_FAILED and report.finished
    why = "toy run raised an error: ValueError: boom"
    assert report.failed == [("j0/a", "failed", why), ("j0/b", "blocked", f"blocked: a failed ({why})")]
    fake.default = (OK,)
    assert ensemble.reconcile(plan).actions == []  # without --retry-failed a failure stays
    retried = ensemble.reconcile(plan, retry_failed=True)
    assert retried.messages == ["j0/a: reopened (was failed: toy run raised an error: ValueError: boom)"]
    assert retried.actions == ["j0/b: unblocked", "j0/a: started attempt 2 (local fake-2)"]
    final = ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=5)
    assert final.exit_code == EXIT_OK and element_states(tmp / "runs", "j0") == ["done", "done"]


def test_capacity_is_shared_by_all_jobs(tmp: Path, fake: FakeRunner) -> None:
    fake.max_active = 3
    fake.default = (running(), OK)
    plan = toy_plan(tmp / "runs", {f"j{i}": [toy_step("a", "local")] for i in range(5)})
    first = ensemble.reconcile(plan)
    assert len(fake.started) == 3 and first.states["running"] == 3 and first.unfinished == 5
    ensemble.reconcile(plan)  # all three still running: no room
    assert len(fake.started) == 3
    ensemble.reconcile(plan)  # they finish now and the two waiting start
    assert len(fake.started) == 5


def test_bundling_profile_submits_in_allocations(tmp: Path, fake: FakeRunner) -> None:
    machines = tmp / "machines.toml"
    machines.write_text('[machines.cluster]\nkind = "slurm"\nbundle = 2\n')
    fake.default = (OK,)
    plan = toy_plan(tmp / "runs", {f"j{i}": [toy_step("a", "cluster")] for i in range(3)}, machines)
    report = ensemble.reconcile(plan)
    assert [len(b) for b in fake.bundles] == [2, 1]
    assert report.actions[-2:] == ["bundled 2 attempts into cluster job fake-1",
                                   "bundled 1 attempts into cluster job fake-3"]
    status = JobStatus.load(tmp / "runs" / "j1")
    assert status is not None
    attempt = status.elements[0].attempts[0]
    assert (attempt.phase, attempt.runner_id, attempt.token) == ("queued", "fake-1", fake.bundles[0][1])
    final = ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=5)
    assert final.states == {"done": 3} and len(fake.started) == 3


def test_bundle_refused_is_found_lost_and_restarted(tmp: Path, fake: FakeRunner,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    machines = tmp / "machines.toml"
    machines.write_text('[machines.cluster]\nkind = "slurm"\nbundle = 4\n')
    fake.default = (OK,)
    fake.refuse.append("sbatch: error: Batch job submission failed")
    plan = toy_plan(tmp / "runs", {"j0": [toy_step("a", "cluster")]}, machines)
    report = ensemble.reconcile(plan)
    refused = f"fake runner refused {fake_token(tmp)}: sbatch: error: Batch job submission failed"
    assert report.errors == [f"runner 'cluster': bundle of 1 not submitted ({refused})"]
    assert report.exit_code == EXIT_ERROR
    monkeypatch.setattr("autogenv2.manager.LOST_GRACE_SECONDS", 0.0)
    again = ensemble.reconcile(plan)
    assert again.actions[0] == "j0/a: attempt 1 never reached the runner; a new one will start"
    final = ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=5)
    assert final.states == {"done": 1} and len(fake.started) == 1


def test_refused_submission_is_reported_then_abandoned(tmp: Path, fake: FakeRunner,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake.default = (OK,)
    fake.refuse.append("sbatch: error: Socket timed out on send/recv operation")
    plan = plan_of(tmp / "runs", jobs=2)
    report = ensemble.reconcile(plan)
    assert len(report.errors) == 1 and report.errors[0].startswith("job 'j0': fake runner refused ag2-")
    assert "j1/a: started attempt 1 (local fake-1)" in report.actions  # the other job goes on
    assert ensemble.reconcile(plan).errors == []  # within the grace period the attempt may still arrive
    monkeypatch.setattr("autogenv2.manager.LOST_GRACE_SECONDS", 0.0)
    abandoned = "j0/a: attempt 1 never reached the runner; a new one will start"
    assert abandoned in ensemble.reconcile(plan).actions
    assert ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=6).states == {"done": 4}


def test_attempt_on_a_profile_no_longer_defined_waits(tmp: Path, fake: FakeRunner) -> None:
    machines = tmp / "machines.toml"
    machines.write_text('[machines.cluster]\nkind = "slurm"\n')
    fake.default = (running(), OK)
    ensemble.reconcile(toy_plan(tmp / "runs", {"j": [toy_step("a", "cluster")]}, machines))
    machines.write_text('[machines.other]\nkind = "slurm"\n')
    moved = toy_plan(tmp / "runs", {"j": [toy_step("a", "other")]}, machines)
    report = ensemble.reconcile(moved)
    assert report.messages == ["j/a: runner changed (applies to the next attempt)"]
    unknown = "runner 'cluster' is not a machine profile (known: local, other)"
    assert report.errors == [f"runner 'cluster': cannot poll ({unknown}); its 1 attempts wait"]
    assert report.states == {"running": 1}


def fake_token(root: Path) -> str:
    status = JobStatus.load(root / "runs" / "j0")
    assert status is not None
    return status.elements[0].attempts[0].token


def test_runner_that_cannot_poll_starts_nothing(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (running(), OK)
    plan = plan_of(tmp / "runs", jobs=1)
    ensemble.reconcile(plan)
    plan.jobs.append(toy_plan(tmp / "runs", {"late": [toy_step("a", "local")]}).jobs[0])
    fake.down = "slurm_load_jobs error: Unable to contact slurm controller"
    report = ensemble.reconcile(plan)
    assert report.errors == [f"runner 'local': cannot poll (fake runner: {fake.down}); its 1 attempts wait"]
    assert report.states["running"] == 1 and len(fake.started) == 1  # "late" was not started
    fake.down = ""
    assert ensemble.watch(plan, interval=0, on_pass=lambda report: None, max_passes=6).exit_code == EXIT_OK


def test_conflicting_job_is_reported_and_the_others_go_on(tmp: Path, fake: FakeRunner) -> None:
    fake.default = (OK,)
    root = tmp / "runs"
    ensemble.reconcile(toy_plan(root, {"x": [toy_step("a", "local")], "y": [toy_step("a", "local")]}))
    changed = toy_plan(root, {"x": [toy_step("renamed", "local")], "y": [toy_step("a", "local")]})
    report = ensemble.reconcile(changed)
    assert len(report.errors) == 1 and report.errors[0].startswith("job 'x': steps were ['a']")
    assert report.unfinished == 1 and "y/a: attempt 1: done" in report.actions


def test_progress_lines_are_capped(tmp: Path, fake: FakeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ensemble, "PROGRESS_LINES", 1)
    fake.default = (running(), running(), OK)
    plan = toy_plan(tmp / "runs", {f"j{i}": [toy_step("a", "local")] for i in range(3)})
    report = ensemble.reconcile(plan)
    assert len(report.progress) == 1 and report.progress_more == 2


def test_a_held_lock_refuses_a_second_pass(tmp: Path, fake: FakeRunner) -> None:
    plan = plan_of(tmp / "runs", jobs=1)
    plan.root.mkdir(parents=True)
    held = FileLock(str(plan.root / ".autogenv2.lock"))  # as another `autogenv2 run` holds it
    with held.acquire(timeout=0), pytest.raises(LockedError, match="another `autogenv2 run` is"):
        ensemble.reconcile(plan)
    assert fake.started == []
