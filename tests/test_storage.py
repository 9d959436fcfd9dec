"""JSON storage: atomic writes, schema versions, corrupt files kept aside, every object round-trips."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autogenv2.codes import CODES, methods_of
from autogenv2.errors import StatusError
from autogenv2.plan import load_plan
from autogenv2.states import State
from autogenv2.status import Attempt, ElementStatus, JobStatus
from autogenv2.storage import SCHEMA_VERSION, write_json_atomic
from conftest import TINY_PLAN


def sample_status() -> JobStatus:
    element = ElementStatus(name="dmc", code="pyqmc", method="dmc", spec={"options": {"tstep": 0.02}},
                            writer={"nblocks": 40}, state=State.needs_more,
                            result={"energy": -1.17, "error": 1e-3})
    element.attempts.append(Attempt(number=1, token="ag2-abc", runner="local", runner_id="123",
                                    phase="finished", exit_code=-15, reason="walltime", blocks=17))
    element.log("retry", reason="walltime")
    return JobStatus(job_id="h2", elements=[element])


def test_status_round_trip(tmp_path: Path) -> None:
    status = sample_status()
    status.save(tmp_path)
    data = json.loads((tmp_path / "status.json").read_text())
    assert next(iter(data)) == "schema_version" and data["schema_version"] == SCHEMA_VERSION
    again = JobStatus.load(tmp_path)
    assert again is not None and again.model_dump() == status.model_dump()


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    data = sample_status().model_dump(mode="json")
    data["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "status.json").write_text(json.dumps(data))
    with pytest.raises(StatusError, match="newer than this autogenv2"):
        JobStatus.load(tmp_path)
    assert (tmp_path / "status.json").exists(), "a newer file must be left untouched"


@pytest.mark.parametrize("garbage", ['{"schema_version": 1, "job_id": ', "\x00\x01", "[1, 2]",
                                     '{"schema_version": 1, "job_id": 5, "elements": "x"}'])
def test_corrupt_status_is_kept_aside(tmp_path: Path, garbage: str) -> None:
    (tmp_path / "status.json").write_text(garbage)
    with pytest.raises(StatusError) as info:
        JobStatus.load(tmp_path)
    kept = list(tmp_path.glob("status.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == garbage
    assert "mv " in str(info.value) and "\n" not in str(info.value)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    for i in range(20):
        write_json_atomic(tmp_path / "f.json", {"i": i})
    assert json.loads((tmp_path / "f.json").read_text()) == {"i": 19}
    assert os.listdir(tmp_path) == ["f.json"]


def test_every_writer_and_reader_round_trips(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TINY_PLAN)
    for step in load_plan(tmp_path / "plan.toml").jobs[0].steps:
        writer_opts, reader_opts = step.split_options(step.name)
        for cls, opts in zip(methods_of(step.code)[step.method], (writer_opts, reader_opts), strict=True):
            obj = cls.build(step.name, opts)
            dumped = json.loads(json.dumps(obj.model_dump(mode="json")))
            assert cls(**dumped) == obj


def test_every_code_has_a_method_table() -> None:
    for code in ("pyscf", "pyqmc"):
        assert code in CODES and methods_of(code)


def test_plan_round_trips(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TINY_PLAN)
    plan = load_plan(tmp_path / "plan.toml")
    from autogenv2.plan import Plan

    assert Plan.model_validate_json(plan.model_dump_json()) == plan


def test_version_1_status_is_migrated(tmp_path: Path) -> None:
    data = sample_status().model_dump(mode="json")
    data["schema_version"] = 1
    for element in data["elements"]:
        del element["lineage"]
    (tmp_path / "status.json").write_text(json.dumps(data))
    status = JobStatus.load(tmp_path)
    assert status is not None and status.schema_version == SCHEMA_VERSION
    assert status.elements[0].lineage == {} and status.elements[0].attempts[0].blocks == 17
