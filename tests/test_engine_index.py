"""index.py in process: rows from real toy statuses (fake runner), rescans, staleness, rebuilds."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from autogenv2.index import (
    COLUMNS,
    INDEX_SCHEMA,
    Index,
    element_rows,
    open_synced,
    quality,
    status_is_final,
    variances,
)
from autogenv2.job import JobRun
from autogenv2.plan import Job
from autogenv2.runners.fake import FakeRunner, finished, running, toy_blocks
from autogenv2.states import State
from autogenv2.status import ElementStatus, JobStatus
from engine_kit import passes_until_done, toy_step


def run_job(root: Path, job_id: str, fake: FakeRunner, passes: int = 10) -> JobStatus:
    """A two-step toy job run by ``fake`` for up to ``passes`` passes; its saved status."""
    run = JobRun(Job(id=job_id, steps=[toy_step("a"), toy_step("b", seed=3)], variables={"r": 1.4}), root)
    run.load()
    return passes_until_done(run, fake, passes)


def test_rows_of_finished_and_running_jobs(tmp: Path) -> None:
    done = run_job(tmp, "done", FakeRunner(default=(finished(0, write=toy_blocks()),)))
    busy = run_job(tmp, "busy", FakeRunner(default=(running(),)), passes=2)
    with Index(tmp) as index:
        index.update([(done, True), (busy, False)])
        rows = index.rows()
        assert [(r["job"], r["element"], r["state"]) for r in rows] == [
            ("busy", "a", "running"), ("busy", "b", "planned"), ("done", "a", "done"), ("done", "b", "done")]
        a = rows[2]
        result = done.element("a").result
        keys = ("energy", "error", "error_95")
        assert [a[k] for k in keys] == [result[k] for k in keys]
        assert (a["blocks"], a["attempts"], a["warmup"]) == (20, 1, 0)
        assert a["block_variance"] == result["variance"] and a["local_energy_variance"] is None
        assert a["reliable"] is result["reliable"]
        assert a["wall_seconds"] == pytest.approx(60.0) and a["code"] == "toy" and a["reason"] == ""
        assert a["parameters"] == {"nblocks": 20, "sigma": 0.01, "seconds_per_block": 0.0}
        assert rows[1]["parameters"]["seed"] == 3 and rows[0]["scheduler"] == "running RUNNING"
        assert rows[0]["energy"] is None and rows[0]["wall_seconds"] is None
        only = index.rows(only=["done"], columns=["job", "element", "parameters"], decode=False)
        assert [list(r) for r in only] == [["job", "element", "parameters"]] * 2
        assert json.loads(only[1]["parameters"])["seed"] == 3
        assert not index.all_final()  # busy is not final


def test_all_final_sees_any_touch(tmp: Path) -> None:
    with Index(tmp) as index:
        assert not index.all_final()  # empty: nothing proves the ensemble finished
    status = run_job(tmp, "x", FakeRunner(default=(finished(0, write=toy_blocks()),)))
    with Index(tmp) as index:
        index.update([(status, True)])
        assert index.all_final()
        path = tmp / "x" / "status.json"
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
        assert not index.all_final()
        path.unlink()
        assert not index.all_final()


def test_rescan_finds_new_changed_removed_and_unreadable(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks()),))
    first, second = run_job(tmp, "first", fake), run_job(tmp, "second", fake)
    with Index(tmp) as index:
        index.update([(first, True)])
        (tmp / "stray.txt").write_text("not a job")
        (tmp / "empty").mkdir()
        assert index.rescan() == []
        assert {r["job"] for r in index.rows()} == {"first", "second"} and index.meta("dirty") == "0"
        broken = tmp / "broken"
        broken.mkdir()
        (broken / "status.json").write_text('{"schema_version": 1, "job_id": 5}')
        second.elements[0].state = State.failed
        second.save(tmp / "second")
        os.rename(tmp / "first", tmp / "gone")
        (tmp / "gone" / "status.json").unlink()
        errors = index.rescan()
        assert len(errors) == 1 and "broken/status.json" in errors[0]
        assert {(r["job"], r["element"], r["state"]) for r in index.rows()} == {
            ("second", "a", "failed"), ("second", "b", "done")}
        assert index.db.execute("SELECT final FROM jobs WHERE job_id='second'").fetchone() == (1,)


def test_open_synced_rescans_only_when_dirty_or_asked(tmp: Path) -> None:
    status = run_job(tmp, "x", FakeRunner(default=(finished(0, write=toy_blocks()),)))
    index, errors = open_synced(tmp)  # new: rebuilt from the status files
    with index:
        assert errors == [] and len(index.rows()) == 2 and index.meta("dirty") == "0"
    status.elements[1].state = State.failed
    status.save(tmp / "x")
    with open_synced(tmp)[0] as index:
        assert index.rows()[1]["state"] == "done"  # clean: the index is trusted as it is
    with open_synced(tmp, rescan=True)[0] as index:
        assert index.rows()[1]["state"] == "failed"
    with Index(tmp) as index:
        index.set_meta(dirty="1")
    status.elements[1].state = State.blocked
    status.save(tmp / "x")
    with open_synced(tmp)[0] as index:
        assert index.rows()[1]["state"] == "blocked"


def test_corrupt_or_old_index_is_rebuilt(tmp: Path) -> None:
    run_job(tmp, "x", FakeRunner(default=(finished(0, write=toy_blocks()),)))
    path = tmp / ".autogenv2" / "index.sqlite"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database" * 100)
    with open_synced(tmp)[0] as index:
        assert len(index.rows()) == 2 and index.meta("schema") == INDEX_SCHEMA
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='0' WHERE key='schema'")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('dirty', '0')")
    db.close()
    with Index(tmp) as index:  # an older layout: dropped, to be rebuilt by the next rescan
        assert index.rows() == [] and index.meta("dirty") is None and index.meta("schema") == INDEX_SCHEMA


def test_status_is_final() -> None:
    def status(*states: State) -> JobStatus:
        return JobStatus(job_id="j", elements=[ElementStatus(name=f"e{i}", code="toy", method="mc", spec={},
                                                             state=s) for i, s in enumerate(states)])

    assert status_is_final(status(State.done, State.done))
    assert status_is_final(status(State.done, State.failed, State.blocked))
    assert not status_is_final(status(State.done, State.running))
    assert not status_is_final(status(State.failed, State.needs_more))
    assert not status_is_final(status(State.planned))


def test_variances_and_quality_by_code() -> None:
    assert variances("toy", {"variance": 2.0}) == (2.0, None)
    assert variances("qwalk", {"variance": 3.0}) == (None, 3.0)
    assert variances("qwalk", {"block_variance": 1, "local_energy_variance": float("nan")}) == (1.0, None)
    assert quality({"warmup": 4, "error_95": 0.1, "reliable": False}) == (4, 0.1, False)
    assert quality({"warmup": "4", "error_95": "x", "reliable": 1}) == (None, None, None)


def test_element_rows_lineage_and_scheduler() -> None:
    element = ElementStatus(name="vmc", code="pyqmc", method="vmc", spec={"options": {"nblocks": 5}},
                            state=State.running, result={"iterations": 3, "energy": float("nan")},
                            lineage={"chkfile": {"element": "scf", "attempt": 2, "sha256": "ab" * 32}})
    status = JobStatus(job_id="j", elements=[element])
    row = dict(zip(["job", "position", *COLUMNS[1:]], element_rows(status)[0], strict=True))
    shown = [row[k] for k in ("element", "code", "state", "attempts", "scheduler")]
    assert shown == ["vmc", "pyqmc", "running", 0, ""]
    assert row["energy"] is None and row["blocks"] == 3  # NaN is no energy; iterations count as blocks
    assert row["lineage"] == json.dumps({"chkfile": "scf#2:" + "ab" * 6})
