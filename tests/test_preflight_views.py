"""Mistakes caught before running, `describe` against the models, one truth for the views, clear columns."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autogenv2 import Job, Plan, PlanError, Step, load_plan
from autogenv2.codes import CODES, get_method, methods_of
from autogenv2.describe import HIDDEN, method_rows
from autogenv2.ensemble import watch
from autogenv2.errors import ProgramNotFoundError
from autogenv2.index import variances
from autogenv2.progress import progress_line
from autogenv2.states import State
from autogenv2.status import Attempt, ElementStatus, JobStatus

SCRIPT = Path(sys.executable).parent / "autogenv2"
TOY = 'root = "runs"\n[[steps]]\nname = "a"\ncode = "toy"\nmethod = "mc"\n{a}\n[[jobs]]\nid = "j"\n'


def script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          check=False)


# ------------------------------------------------------------------ describe
def test_describe_pyqmc_dmc_lists_every_option_of_its_writer_and_reader(tmp_path: Path) -> None:
    proc = script("describe", "pyqmc", "dmc", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pyqmc dmc: Diffusion Monte Carlo") and lines[1].split()[:5] == [
        "option", "type", "default", "unit", "from"]
    listed = [line.split()[0] for line in lines[2:] if not line.startswith("  every step also takes")]
    writer, reader = get_method("pyqmc", "dmc")
    assert sorted(listed) == sorted((set(writer.model_fields) | set(reader.model_fields)) - HIDDEN)
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["nconfig"].split()[1:3] == ["int", "1000"] and "walkers" in rows["nconfig"]
    assert rows["warmup"].split()[1:3] == ["int", "5"] and "reader" in rows["warmup"]
    assert rows["tstep"].split()[1:3] == ["float", "0.02"] and "au (1/Ha)" in rows["tstep"]


@pytest.mark.parametrize("code", CODES)
def test_every_option_of_every_method_is_described_with_help(code: str) -> None:
    for method in methods_of(code):
        writer, reader = get_method(code, method)
        rows = method_rows(code, method)
        assert {r["option"] for r in rows} == (set(writer.model_fields) | set(reader.model_fields)) - HIDDEN
        assert all(r["help"] and r["type"] and r["default"] for r in rows), [r for r in rows if not r["help"]]


# ------------------------------------------------------------------ strict types and guards
@pytest.mark.parametrize(("option", "words"), [
    ('tstep = "0.02"', ["'tstep'", "expected a number", "'0.02'"]),
    ('nblocks = "20"', ["'nblocks'", "expected an integer"]),
    ('max_attempts = "5"', ["'max_attempts'", "expected an integer"]),
    ('max_core_hours = "1.5"', ["'max_core_hours'", "expected a number"]),
])
def test_a_string_where_a_number_is_expected_is_an_error(option: str, words: list[str],
                                                          tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TOY.format(a=option))
    with pytest.raises(PlanError) as info:
        load_plan(tmp_path / "plan.toml")
    message = str(info.value)
    assert all(word in message for word in ["plan.toml", "job 'j'", "step 'a'", *words]), message


def test_a_huge_total_is_allowed_with_a_core_hour_cap(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TOY.format(a="nblocks = 1_000_000_000\nmax_core_hours = 1.0"))
    assert load_plan(tmp_path / "plan.toml").jobs[0].steps[0].options["nblocks"] == 10**9


def test_a_valid_open_shell_and_ecp_pass_the_pyscf_checks(tmp_path: Path) -> None:
    text = ('root = "runs"\n[[steps]]\nname = "scf"\ncode = "pyscf"\nmethod = "uhf"\natom = "Li 0 0 0"\n'
            'basis = "ccecp-ccpvdz"\necp = "ccecp"\nspin = 1\n[[jobs]]\nid = "li"\n')
    (tmp_path / "plan.toml").write_text(text)
    assert load_plan(tmp_path / "plan.toml").jobs[0].id == "li"


# ------------------------------------------------------------------ a missing program on a remote runner
def toy_plan(tmp_path: Path, **options: object) -> Plan:
    steps = [Step(name="a", code="toy", method="mc", options=dict(options)),
             Step(name="b", code="toy", method="mc")]
    return Plan(root=tmp_path / "runs", jobs=[Job(id="j", steps=steps)]).check()


def test_a_program_missing_at_the_first_attempt_fails_once(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a remote runner (not checked at plan load): no attempt is recorded, no retry, b is blocked."""
    def missing(self: object) -> list[str]:
        raise ProgramNotFoundError("qwalk not found: set AUTOGENV2_QWALK to the QWalk binary")

    monkeypatch.setattr("autogenv2.codes.toy.writer.ToyWriter.command", missing)
    report = watch(toy_plan(tmp_path), 0.05, lambda _: None, max_passes=3)
    status = JobStatus.load(tmp_path / "runs" / "j")
    assert status is not None and report.finished and report.exit_code == 3
    a, b = status.elements
    assert (a.state, len(a.attempts)) == (State.failed, 0)
    assert a.reason == "qwalk not found: set AUTOGENV2_QWALK to the QWalk binary"
    assert b.state is State.blocked and b.reason.startswith("blocked: a failed (qwalk not found")


def test_a_program_that_cannot_start_on_the_runner_fails_once(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The launch wrapper's exit 127 ("cannot start program") is not retried."""
    monkeypatch.setattr("autogenv2.ensemble.check_programs", lambda plan: None)  # as for a remote runner
    report = watch(toy_plan(tmp_path, python=str(tmp_path / "no-such-python")), 0.1, lambda _: None,
                   max_passes=100)
    status = JobStatus.load(tmp_path / "runs" / "j")
    assert status is not None and report.exit_code == 3
    a = status.elements[0]
    assert a.state is State.failed and len(a.attempts) == 1 and "could not be started" in a.reason


def test_a_program_missing_here_fails_at_plan_load_for_local_steps(tmp_path: Path) -> None:
    from autogenv2.preflight import check_programs

    with pytest.raises(PlanError, match=r"job 'j', step 'a': python '.*no-such-python' not found"):
        check_programs(toy_plan(tmp_path, python=str(tmp_path / "no-such-python")))


# ------------------------------------------------------------------ one truth for the views
def test_a_plan_change_is_in_the_index_in_the_same_step(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TOY.format(a="mean = -1.0"))
    assert script("run", "plan.toml", "--watch", "--interval", "0.1", cwd=tmp_path).returncode == 0
    (tmp_path / "plan.toml").write_text(TOY.format(a="mean = -2.0\nseconds_per_block = 0.5"))
    assert script("run", "plan.toml", cwd=tmp_path).returncode == 4  # redone: running now
    rows = json.loads(script("results", "plan.toml", "-f", "json", cwd=tmp_path).stdout)
    assert rows[0]["parameters"]["mean"] == -2.0 and rows[0]["state"] == "running", rows
    script("cancel", "plan.toml", cwd=tmp_path)


# ------------------------------------------------------------------ columns and progress
def test_variance_columns_say_which_variance() -> None:
    assert variances("pyqmc", {"variance": 0.5}) == (0.5, None)
    assert variances("qwalk", {"variance": 0.7}) == (None, 0.7)
    assert variances("pyscf", {"energy": -1.0}) == (None, None)


def test_scan_table_leaves_the_scf_error_blank(tmp_path: Path) -> None:
    from autogenv2.report import build_report

    root = tmp_path / "runs"
    for r, energy in ((1.0, -1.08), (1.4, -1.13)):
        options = {"atom": f"H 0 0 0; H 0 0 {r}", "unit": "bohr"}
        element = ElementStatus(name="scf", code="pyscf", method="rhf", state=State.done,
                                result={"energy": energy}, spec={"name": "scf", "options": options})
        (root / f"r{r}").mkdir(parents=True)
        JobStatus(job_id=f"r{r}", elements=[element]).save(root / f"r{r}")
    build_report(root, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "0.000000" not in page and "-1.080000</td><td></td>" in page
    (scan,) = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["scan"]
    assert scan["error"] == [None, None]


def test_watch_progress_line_shows_blocks_error_target_and_time_to_go() -> None:
    element = ElementStatus(name="dmc", code="pyqmc", method="dmc", spec={"options": {"target_error": 0.001}},
                            writer={"nblocks": 400}, state=State.needs_more,
                            result={"blocks": 100, "error": 0.0021},
                            attempts=[Attempt(number=1, token="t", runner="local", started_at=0.0,
                                              ended_at=60.0, blocks=100)])
    assert progress_line("h2/dmc", element) == ("h2/dmc: 100/400 blocks, error 2.10e-03 (target 1.00e-03), "
                                                "~3.0 min to go")


def test_the_sampling_reason_reads_as_a_true_statement() -> None:
    from autogenv2 import stats

    est = stats.Estimate(mean=-1.0, error=9.07e-4, n=400, block_size=4, reliable=True, variance=1e-4)
    prec = stats.Precision(error=9.07e-4, tau=2.0, window=10, relative=0.5, reliable=True, n=400)
    _, why = stats.samples_to_target(est, prec, 1.2e-3)
    assert why == "error 9.07e-04 is within target 1.20e-03 but its 95 % bound 1.65e-03 is not"
    _, why = stats.samples_to_target(est, prec, 5e-4)
    assert why == "error 9.07e-04 > target 5.00e-04 (95 % bound 1.65e-03)"


def test_watch_progress_line_of_a_running_attempt() -> None:
    import time

    element = ElementStatus(name="vmc", code="toy", method="mc", spec={"options": {}}, writer={"nblocks": 20},
                            state=State.running,
                            attempts=[Attempt(number=1, token="t", runner="local",
                                              started_at=time.time() - 90)])
    assert progress_line("j/vmc", element) == "j/vmc: 0/20 blocks, attempt 1 running for 1.5 min"


def test_watch_reads_the_blocks_of_a_running_attempt(tmp_path: Path) -> None:
    import re
    import time

    from autogenv2.cancel import cancel_jobs
    from autogenv2.ensemble import reconcile

    plan = toy_plan(tmp_path, nblocks=4000, seconds_per_block=0.05)
    reconcile(plan)
    try:
        time.sleep(2.5)
        report = reconcile(plan)
        line = report.progress[0]
        found = re.fullmatch(r"j/a: (\d+)/4000 blocks, ~[\d.]+ min to go, "
                             r"attempt 1 running for [\d.]+ min", line)
        assert found and int(found.group(1)) > 0, line
        assert report.exit_code == 4
    finally:
        cancel_jobs(plan, [])


def test_pyqmc_blocks_written_so_far_are_read_without_the_lock(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    from autogenv2.codes.pyqmc.writer import OptimizeWriter, VMCWriter

    with h5py.File(tmp_path / "vmc.hdf5", "w") as handle:
        handle["block"] = np.arange(7)
    assert VMCWriter().blocks_written(tmp_path) == 7
    assert OptimizeWriter().blocks_written(tmp_path) is None  # no opt.hdf5 yet
