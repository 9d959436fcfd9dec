"""The one owner of element state: transitions on the status model, old status files, the policies
the Manager composes (health fixes, walltime sizing) from what each Writer declares."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from autogenv2 import health, sizing
from autogenv2.codes import get_method
from autogenv2.runners.base import Resources, RunStatus
from autogenv2.states import Phase, State
from autogenv2.status import Attempt, ElementStatus, JobStatus
from autogenv2.storage import SCHEMA_VERSION

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "autogenv2"


def element() -> ElementStatus:
    return ElementStatus(name="dmc", code="toy", method="mc", spec={})


def assigned_attributes(tree: ast.AST) -> list[tuple[str, int]]:
    """(attribute, line) of every assignment to an attribute, tuple targets included."""
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and isinstance(part.ctx, ast.Store):
                    found.append((part.attr, part.lineno))
    return found


def test_only_status_py_assigns_state_or_phase() -> None:
    """Parse the package: an assignment to ``.state`` or ``.phase`` outside status.py is a second owner."""
    found = {path.name: [n for attr, n in assigned_attributes(ast.parse(path.read_text()))
                         if attr in ("state", "phase")] for path in PACKAGE.rglob("*.py")}
    assert len(found["status.py"]) >= 10, "the transitions are there"
    assert {name: lines for name, lines in found.items() if lines and name != "status.py"} == {}


def test_an_attempt_lives_through_submit_queue_run_finish() -> None:
    status = element()
    attempt = status.start_attempt("ag2-t1", "local")
    assert (status.state, attempt.phase, attempt.number) == (State.running, Phase.submitting, 1)
    attempt.queued("4242")
    assert (attempt.phase, attempt.runner_id) == (Phase.queued, "4242")
    assert attempt.observe(RunStatus("running", started_at=10.0, scheduler_state="R"))
    assert not attempt.observe(RunStatus("running", started_at=10.0, scheduler_state="R")), "nothing new"
    attempt.end(RunStatus("finished", exit_code=0, ended_at=70.0))
    assert (attempt.phase, attempt.seconds, attempt.exit_code) == (Phase.finished, 60.0, 0)
    status.done({"energy": -1.0}, {"walkers": "w.h5"}, "converged")
    assert (status.state, status.outputs, status.reason) == (State.done, {"walkers": "dmc/w.h5"}, "")


def test_abandon_retry_fail_reopen_and_cancel() -> None:
    status = element()
    first = status.start_attempt("ag2-a", "slurm")
    first.adopt("77")
    first.adopt("78")  # the first id found is kept
    status.abandon(first)
    assert (status.state, first.phase, first.reason, first.runner_id) == (State.ready, Phase.lost,
                                                                          "never started (abandoned)", "77")
    status.start_attempt("ag2-b", "slurm")
    assert status.attempt_failed({}, "segfault") == 1 and status.attempt_failed({}, "segfault") == 2
    status.retry("segfault")
    assert status.state is State.ready
    assert not status.reopen("--retry-failed"), "only a failed element reopens"
    status.fail("gave up")
    assert status.reopen("--retry-failed") and (status.state, status.failures) == (State.ready, 0)
    status.start_attempt("ag2-c", "slurm")
    status.cancel("79")
    assert (status.state, "cancelled by user" in status.reason) == (State.failed, True)
    assert [e["event"] for e in status.events] == ["retry", "failed", "reopened", "cancelled"]


def test_block_unblock_archive() -> None:
    status = element()
    status.block("vmc failed (killed)")
    assert (status.state, status.reason) == (State.blocked, "blocked: vmc failed (killed)")
    status.unblock()
    assert (status.state, status.reason) == (State.planned, "")
    status.start_attempt("ag2-d", "local")
    status.health_fix("equilibration", "drift", {}, {"warmup": 12})
    status.archive("dmc.archived-1")
    assert (status.state, status.attempts, status.archived) == (State.planned, [], ["dmc.archived-1"])
    assert status.reader == {"warmup": 12} and status.fixes_done("equilibration") == 1, (
        "fixes are not reapplied")


def test_a_schema_3_status_folds_its_health_fix_events_into_reader(tmp_path: Path) -> None:
    """Files written before the ``reader`` field had the settings only in events; they load unchanged
    otherwise, phases included."""
    fix = {"event": "health-fix", "check": "equilibration", "detail": "d"}
    events = [{"time": 1.0, **fix, "writer": {"nblocks": 80}}, {"time": 2.0, **fix, "reader": {"warmup": 20}}]
    attempt = {"number": 1, "token": "ag2-x", "runner": "local", "phase": "finished", "submitted_at": 0.0}
    data = {"schema_version": 3, "job_id": "h2", "variables": {}, "updated_at": 0.0,
            "elements": [{"name": "dmc", "code": "toy", "method": "mc", "spec": {}, "state": "done",
                          "attempts": [attempt], "events": events}]}
    (tmp_path / "status.json").write_text(json.dumps(data))
    status = JobStatus.load(tmp_path)
    assert status is not None and status.schema_version == SCHEMA_VERSION == 4
    loaded = status.element("dmc")
    assert loaded.reader == {"warmup": 20} and loaded.attempts[0].phase is Phase.finished
    status.save(tmp_path)
    saved = json.loads((tmp_path / "status.json").read_text())["elements"][0]
    assert saved["reader"] == {"warmup": 20} and saved["attempts"][0]["phase"] == "finished"


@pytest.mark.parametrize(("code", "method", "options", "timestep", "total"), [
    ("pyqmc", "dmc", {}, "tstep", "nblocks"), ("pyqmc", "vmc", {}, "tstep", "nblocks"),
    ("pyqmc", "optimize", {}, None, "max_iterations"),
    ("qwalk", "dmc", {"timestep": 0.02}, "timestep", "nblock"),
    ("qwalk", "vmc", {}, None, "nblock"), ("toy", "mc", {}, "tstep", "nblocks"),
    ("pyscf", "rhf", {"atom": "H 0 0 0; H 0 0 0.74"}, None, None)])
def test_health_fixes_take_option_names_from_the_writer(code: str, method: str, options: dict[str, object],
                                                        timestep: str | None, total: str | None) -> None:
    """A QWalk VMC with no timestep given has nothing to halve: the population fix does not apply."""
    writer_cls, _ = get_method(code, method)
    writer = writer_cls.build("step", options)
    finding = {"check": "population", "detail": "x"}
    smaller, more = health.SmallerTimestep(), health.SampleMore()
    assert smaller.applies(finding, writer) is (timestep is not None)
    assert more.applies(finding, writer) is (total is not None)
    results = {"blocks": 40, "warmup": 8}
    if timestep is not None:
        remedy = smaller.apply(finding, writer, results)
        assert remedy.how == "redo" and remedy.writer == {timestep: getattr(writer, timestep) / 2}
    if total is not None:
        remedy = more.apply(finding, writer, results)
        assert remedy.how == "continue" and remedy.writer == {total: 72}
    warm = health.MoreWarmup().apply(finding, writer, results)
    assert warm.how == "reread" and warm.reader == {"warmup": 8 + 32 // 4}


def test_walltime_sizing_fits_the_measured_cost() -> None:
    """Attempts of 10 and 30 blocks took 25 and 65 s: start-up 5 s, 2 s a block; a 100 s walltime at
    80 % leaves (80 - 5) / 2 = 37 blocks more after the 40 done."""
    attempts = [Attempt(number=1, token="a", runner="r", started_at=0.0, ended_at=25.0, blocks=10),
                Attempt(number=2, token="b", runner="r", started_at=30.0, ended_at=95.0, blocks=40)]
    assert sizing.attempt_cost(attempts) == pytest.approx((5.0, 2.0))
    assert sizing.attempt_limit(attempts, 40, 100.0) == 77
    assert sizing.attempt_limit(attempts[:0], 0, 100.0) is None
    assert sizing.attempt_limit(attempts, 40, None) is None
    writer_cls, _ = get_method("toy", "mc")
    writer = writer_cls.build("mc", {})
    assert sizing.size_to_walltime(writer, attempts, 40, Resources(walltime="00:01:40"))
    assert writer.attempt_limit == 77  # type: ignore[attr-defined]
    assert not sizing.size_to_walltime(writer, attempts, 40, Resources(walltime="00:01:40")), "unchanged"
    scf_cls, _ = get_method("pyscf", "rhf")
    scf = scf_cls.build("scf", {"atom": "H 0 0 0; H 0 0 0.74"})
    assert not sizing.size_to_walltime(scf, attempts, 40, Resources(walltime="100"))
