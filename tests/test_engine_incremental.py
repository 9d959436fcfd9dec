"""Incremental passes over a plan file (incremental.py): only the jobs whose plan entry, profiles or status
changed are validated and loaded; the others keep their status files and index rows and are counted."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from autogenv2 import ensemble
from autogenv2.errors import EXIT_FAILED, EXIT_OK, PlanError
from autogenv2.index import INDEX_SCHEMA, Index
from autogenv2.job import JobRun
from autogenv2.runners.fake import FakeRunner, finished, toy_blocks

OK = finished(0, write=toy_blocks())
STEP = 'name = "{}"\ncode = "toy"\nmethod = "mc"\nnblocks = 20\nsigma = 0.01\nseconds_per_block = 0.0\n'
HEAD = 'root = "runs"\n' + "".join("[[steps]]\n" + STEP.format(name) for name in "ab")


def plan_text(jobs: int = 5, machines: str = "", **extra: str) -> str:
    """``jobs`` jobs j0, j1, ... on the a → b template; ``extra`` gives a job's table its own text."""
    text = (f'machines = "{machines}"\n' if machines else "") + HEAD
    return text + "".join(f'[[jobs]]\nid = "j{i}"\n' + extra.get(f"j{i}", "") for i in range(jobs))


def own_steps(*names: str) -> str:
    return "".join("[[jobs.steps]]\n" + STEP.format(name) for name in names)


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the jobs each pass loads (JobRun.load, still run as it is)."""
    ids: list[str] = []
    real = JobRun.load

    def load(self: JobRun) -> list[str]:
        ids.append(self.job.id)
        return real(self)

    monkeypatch.setattr(JobRun, "load", load)
    return ids


def finish(plan_file: Path, loaded: list[str]) -> ensemble.PassReport:
    report = ensemble.watch(plan_file, interval=0, on_pass=lambda report: None, max_passes=10)
    assert report.finished
    loaded.clear()
    return report


def job_rows(root: Path) -> dict[str, tuple[int, int, int, str]]:
    with Index(root) as index:
        query = "SELECT job_id, mtime_ns, size, final, plan FROM jobs"
        return {row[0]: row[1:] for row in index.db.execute(query)}


def stamps(root: Path) -> dict[str, int]:
    return {path.parent.name: path.stat().st_mtime_ns for path in root.glob("*/status.json")}


def test_an_edited_job_alone_is_loaded_and_runs_its_new_step(tmp: Path, fake: FakeRunner,
                                                             loaded: list[str]) -> None:
    fake.default = (OK,)
    plan_file, root = tmp / "plan.toml", tmp / "runs"
    plan_file.write_text(plan_text())
    finish(plan_file, loaded)
    rows, files = job_rows(root), stamps(root)
    plan_file.write_text(plan_text(j2=own_steps("a", "b", "c")))
    report, _ = ensemble.reconcile_file(plan_file)
    assert loaded == ["j2"] and report.messages == ["j2/c: added"]
    assert report.actions == ["j2/c: wrote inputs", "j2/c: started attempt 1 (local fake-11)"]
    assert report.states == {"done": 10, "running": 1} and report.unfinished == 1
    others = [f"j{i}" for i in (0, 1, 3, 4)]
    assert {j: stamps(root)[j] for j in others} == {j: files[j] for j in others}  # not written
    assert {j: job_rows(root)[j] for j in others} == {j: rows[j] for j in others}  # rows untouched
    with Index(root) as index:
        assert len(index.rows()) == 11 and index.meta("dirty") == "0"
    loaded.clear()
    done = ensemble.watch(plan_file, interval=0, on_pass=lambda report: None, max_passes=10)
    assert set(loaded) == {"j2"} and done.states == {"done": 11} and done.exit_code == EXIT_OK
    loaded.clear()
    plan_file.write_text(plan_text(j2=own_steps("a", "b", "c")) + "# a comment: another fingerprint\n")
    quiet, _ = ensemble.reconcile_file(plan_file)  # same entries: nothing to load, all counted
    assert loaded == [] and quiet.states == {"done": 11} and quiet.actions == []


def test_a_status_file_changed_behind_the_index_is_reloaded(tmp: Path, fake: FakeRunner,
                                                             loaded: list[str]) -> None:
    fake.default = (OK,)
    plan_file, root = tmp / "plan.toml", tmp / "runs"
    plan_file.write_text(plan_text())
    finish(plan_file, loaded)
    status = root / "j3" / "status.json"
    os.utime(status, ns=(status.stat().st_atime_ns, status.stat().st_mtime_ns + 10**9))  # mtime alone
    report, _ = ensemble.reconcile_file(plan_file)
    assert loaded == ["j3"] and report.states == {"done": 10}
    assert job_rows(root)["j3"][0] == status.stat().st_mtime_ns  # indexed again
    loaded.clear()
    status.write_text(status.read_text() + " ")  # same mtime possible, other size
    ensemble.reconcile_file(plan_file)
    assert loaded == ["j3"]


def test_a_profile_change_revalidates_every_job(tmp: Path, fake: FakeRunner, loaded: list[str]) -> None:
    fake.default = (OK,)
    plan_file, machines = tmp / "plan.toml", tmp / "machines.toml"
    machines.write_text('[machines.cluster]\nkind = "slurm"\n')
    plan_file.write_text(plan_text(machines="machines.toml"))
    finish(plan_file, loaded)
    machines.write_text('[machines.cluster]\nkind = "slurm"\nbundle = 2\n')
    report, _ = ensemble.reconcile_file(plan_file)
    assert sorted(loaded) == [f"j{i}" for i in range(5)] and report.states == {"done": 10}
    loaded.clear()
    plan_file.write_text(plan_text(machines="machines.toml", j1=own_steps("a", "b", "c")))
    ensemble.reconcile_file(plan_file)
    assert loaded == ["j1"]  # the new keys were stored


def test_an_index_of_the_old_schema_is_rebuilt_by_a_full_pass(tmp: Path, fake: FakeRunner,
                                                              loaded: list[str]) -> None:
    fake.default = (OK,)
    plan_file, root = tmp / "plan.toml", tmp / "runs"
    plan_file.write_text(plan_text())
    finish(plan_file, loaded)
    with sqlite3.connect(root / ".autogenv2" / "index.sqlite") as db:
        db.execute("UPDATE meta SET value='3' WHERE key='schema'")
    db.close()
    report, _ = ensemble.reconcile_file(plan_file)
    assert sorted(loaded) == [f"j{i}" for i in range(5)] and report.states == {"done": 10}
    with Index(root) as index:
        assert index.meta("schema") == INDEX_SCHEMA and len(index.rows()) == 10
    loaded.clear()
    plan_file.write_text(plan_text(j4=own_steps("a", "b", "c")))
    ensemble.reconcile_file(plan_file)
    assert loaded == ["j4"]


def test_plan_change_rules_apply_to_the_changed_jobs(tmp: Path, fake: FakeRunner, loaded: list[str]) -> None:
    fake.default = (OK,)
    plan_file, root = tmp / "plan.toml", tmp / "runs"
    plan_file.write_text(plan_text())
    finish(plan_file, loaded)
    key = job_rows(root)["j3"][3]
    plan_file.write_text(plan_text(j1="a = { nblocks = 24 }\n", j3=own_steps("a")))
    report, _ = ensemble.reconcile_file(plan_file)
    assert sorted(loaded) == ["j1", "j3"]
    assert any(m.startswith("j1/a: nblocks 20 → 24 (same run, new total)") for m in report.messages)
    assert len(report.errors) == 1 and "job 'j3'" in report.errors[0] and "removed" in report.errors[0]
    assert job_rows(root)["j3"][3] == key  # the refused job keeps its old key
    loaded.clear()
    ensemble.reconcile_file(plan_file)
    assert "j3" in loaded  # and is loaded (and refused) again
    with pytest.raises(PlanError, match="duplicate job id 'j0'"):  # every job's id is checked
        plan_file.write_text(plan_text() + '[[jobs]]\nid = "j0"\n')
        ensemble.reconcile_file(plan_file)


def test_kept_failures_are_reported_and_retry_failed_sees_every_job(tmp: Path, fake: FakeRunner,
                                                                    loaded: list[str]) -> None:
    fake.default = (finished(1, stdout="ValueError: boom"),)
    plan_file, root = tmp / "plan.toml", tmp / "runs"
    plan_file.write_text(plan_text(jobs=3))
    finish(plan_file, loaded)
    plan_file.write_text(plan_text(jobs=3, j0=own_steps("a", "b", "c")))
    report, _ = ensemble.reconcile_file(plan_file)
    assert loaded == ["j0"] and report.exit_code == EXIT_FAILED
    assert sorted(name for name, state, _ in report.failed if state == "failed") == ["j0/a", "j1/a", "j2/a"]
    assert report.states == {"failed": 3, "blocked": 4}
    loaded.clear()
    fake.default = (OK,)
    retried, _ = ensemble.reconcile_file(plan_file, retry_failed=True)
    assert sorted(loaded) == ["j0", "j1", "j2"] and len(retried.messages) == 3
    final = ensemble.watch(plan_file, interval=0, on_pass=lambda report: None, max_passes=10)
    assert final.exit_code == EXIT_OK and final.states == {"done": 7}
    assert len(stamps(root)) == 3
