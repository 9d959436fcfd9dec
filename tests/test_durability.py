"""Durable writes at the right cost (issue 19): a pass renames status files without fsync and syncs once
at its end; the save before a hand-over to an external scheduler is fsync'ed on its own."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from autogenv2 import storage
from autogenv2.ensemble import reconcile
from autogenv2.index import Index
from autogenv2.job import JobRun
from autogenv2.plan import load_plan
from autogenv2.runners.fake import FakeRunner
from autogenv2.runners.local import LocalRunner
from autogenv2.status import JobStatus

MACHINES = """[machines.local]
kind = "local"
max_queued = 1
"""
PLAN = """root = "runs"
machines = "machines.toml"
[[steps]]
name = "mc"
code = "toy"
method = "mc"
nblocks = 2
seconds_per_block = 0.0
[[scans]]
id = "j{i}"
vary = { i = [0, 1, 2, 3, 4] }
"""


class Spy:
    """Records the paths os.fsync and storage._syncfs see, then calls the real functions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fsynced: list[str] = []
        self.synced: list[str] = []
        real_fsync, real_syncfs = os.fsync, storage._syncfs

        def fsync(fd: int) -> None:
            self.fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        def syncfs(directory: str) -> None:
            self.synced.append(directory)
            real_syncfs(directory)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(storage, "_syncfs", syncfs)


def test_a_pass_renames_without_fsync_and_syncs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "machines.toml").write_text(MACHINES)
    (tmp_path / "plan.toml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.toml")
    spy = Spy(monkeypatch)
    report = reconcile(plan)
    assert not report.errors, report.errors
    assert report.states == {"running": 1, "planned": 4}, report.states
    assert [p for p in spy.fsynced if "status.json" in p or p.endswith("/runs/j0")] == [], spy.fsynced
    assert len(spy.synced) == 1 and storage._PENDING == set()
    text = (plan.root / "j0" / "status.json").read_text()  # the readable indent=1 layout of json.dumps
    assert text == json.dumps(json.loads(text), indent=1)
    # the jobs waiting for the one slot have nothing on disk yet, and the index knows them as planned
    assert sorted(p.name for p in plan.root.iterdir() if not p.name.startswith(".")) == ["j0"]
    with Index(plan.root) as index:
        rows = index.rows(columns=["job", "state"])
    planned = [(f"j{i}", "planned") for i in range(1, 5)]
    assert [(r["job"], r["state"]) for r in rows] == [("j0", "running"), *planned]
    second = reconcile(plan)  # j0 still runs or has finished: a slot for j1 at most
    assert not second.errors and sum(second.states.values()) == 5 and (plan.root / "j1").exists() is (
        second.states.get("planned", 0) == 3), second.states


@pytest.mark.parametrize("runner, durable", [(LocalRunner(max_active=1), False), (FakeRunner(), True)])
def test_the_save_before_a_submission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: Any,
                                      durable: bool) -> None:
    (tmp_path / "machines.toml").write_text(MACHINES)
    (tmp_path / "plan.toml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.toml")
    run = JobRun(plan.jobs[0], plan.root)
    run.load()
    assert run.status is not None
    element = run.status.elements[0]
    element.start_attempt("ag2-x", "local")  # runs_here decides, not the name: FakeRunner is not local
    spy = Spy(monkeypatch)
    run.save_before_submit(lambda name: runner)
    status_tmp = f"{run.directory / 'status.json'}.tmp-{os.getpid()}"  # fsync'ed before its rename
    assert (status_tmp in spy.fsynced) is durable, spy.fsynced
    assert (str(run.directory) in spy.fsynced) is durable, spy.fsynced
    assert JobStatus.load(run.directory).elements[0].attempts[0].phase == "submitting"  # type: ignore[union-attr]


def test_sync_pending_covers_every_non_durable_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_PENDING", set())
    spy = Spy(monkeypatch)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        storage.write_json_atomic(tmp_path / name / "x.json", {"n": 1}, durable=False)
    assert spy.fsynced == [] and storage._PENDING == {str(tmp_path / "a"), str(tmp_path / "b")}
    assert storage.sync_pending() == 2
    assert spy.synced == [str(tmp_path / "a")]  # one file system: one syncfs
    assert storage.sync_pending() == 0 and spy.synced == [str(tmp_path / "a")]
    storage.write_json_atomic(tmp_path / "a" / "y.json", {"n": 2})
    assert spy.fsynced == [str(tmp_path / "a" / "y.json.tmp-") + str(os.getpid()), str(tmp_path / "a")]


def test_index_rows_of_planned_elements_match_the_general_rows() -> None:
    from autogenv2.index import COLUMNS, element_rows
    from autogenv2.status import ElementStatus

    status = JobStatus(job_id="j", elements=[
        ElementStatus(name="a", code="toy", method="mc", spec={"options": {"b": 1, "a": 2}}),
        ElementStatus(name="q", code="qwalk", method="dmc", spec={}, reason="waits")])
    planned = element_rows(status)  # the short cut for elements with no attempt, result or lineage
    for element in status.elements:
        element.result = {"unrelated": 1}  # takes the general path, same columns
    assert planned == element_rows(status) and {len(row) for row in planned} == {len(COLUMNS) + 1}
