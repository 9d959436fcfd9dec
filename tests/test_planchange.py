"""One test per plan-change rule, on a copy of a finished real H2 ensemble."""
from __future__ import annotations

from pathlib import Path

import pytest

from autogenv2.errors import PlanConflict
from autogenv2.job import JobRun
from autogenv2.plan import load_plan
from autogenv2.states import State
from autogenv2.status import JobStatus
from conftest import autogenv2

pytestmark = pytest.mark.slow


def edit(base: Path, old: str, new: str) -> Path:
    plan = base / "plan.toml"
    text = plan.read_text()
    assert old in text
    plan.write_text(text.replace(old, new, 1))
    return plan


def load_job(base: Path) -> JobRun:
    run = JobRun(load_plan(base / "plan.toml").jobs[0], base / "runs")
    run.messages = run.load()  # type: ignore[attr-defined]
    return run


def states(run: JobRun) -> list[str]:
    assert run.status is not None
    return [e.state.value for e in run.status.elements]


def test_tighter_target_samples_more_of_the_same_run(h2_copy: Path) -> None:
    dmc_before = JobStatus.load(h2_copy / "runs" / "h2").element("dmc")  # type: ignore[union-attr]
    error = dmc_before.result["error"]
    edit(h2_copy, "warmup = 5\n", f"warmup = 5\ntarget_error = {error * 0.8:.6f}\n")
    run = load_job(h2_copy)
    assert states(run) == ["done", "done", "done", "needs_more"]
    assert run.status.element("dmc").writer["nblocks"] > 20  # type: ignore[union-attr]
    proc = autogenv2("run", str(h2_copy / "plan.toml"), "--watch", "--interval", "0.5")
    assert proc.returncode == 0, proc.stdout
    dmc = JobStatus.load(h2_copy / "runs" / "h2").element("dmc")  # type: ignore[union-attr]
    assert dmc.state is State.done and len(dmc.attempts) >= 2
    assert dmc.result["blocks"] > dmc_before.result["blocks"]
    assert dmc.attempts[0].token == dmc_before.attempts[0].token, "the first attempt is kept, not redone"
    assert dmc.result["error"] <= error * 0.8


def test_looser_target_ends_a_run_that_meets_it(h2_copy: Path) -> None:
    error = JobStatus.load(h2_copy / "runs" / "h2").element("dmc").result["error"]  # type: ignore[union-attr]
    edit(h2_copy, "warmup = 5\n", f"warmup = 5\ntarget_error = {error / 3:.6f}\n")
    assert states(load_job(h2_copy))[-1] == "needs_more"
    edit(h2_copy, f"target_error = {error / 3:.6f}", f"target_error = {error * 3:.6f}")
    run = load_job(h2_copy)
    assert states(run) == ["done"] * 4
    assert len(run.status.element("dmc").attempts) == 1  # type: ignore[union-attr]


def test_physical_change_redoes_element_and_archives_old(h2_copy: Path) -> None:
    edit(h2_copy, "tstep = 0.02", "tstep = 0.01")
    run = load_job(h2_copy)
    assert states(run) == ["done", "done", "done", "planned"]
    archived = h2_copy / "runs" / "h2" / "dmc.archived-1"
    assert (archived / "dmc.hdf5").exists() and not (h2_copy / "runs" / "h2" / "dmc").exists()
    assert any("tstep" in m for m in run.messages)  # type: ignore[attr-defined]


def test_geometry_change_redoes_everything_downstream(h2_copy: Path) -> None:
    edit(h2_copy, 'atom = "H 0 0 0; H 0 0 1.4"', 'atom = "H 0 0 0; H 0 0 1.5"')
    run = load_job(h2_copy)
    assert states(run) == ["planned"] * 4
    assert sorted(p.name for p in (h2_copy / "runs" / "h2").glob("*.archived-1")) == [
        "dmc.archived-1", "opt.archived-1", "scf.archived-1", "vmc.archived-1"]


def test_resources_change_applies_without_redo(h2_copy: Path) -> None:
    edit(h2_copy, 'method = "dmc"\n', 'method = "dmc"\nresources = { walltime = "01:00:00" }\n')
    run = load_job(h2_copy)
    assert states(run) == ["done"] * 4
    assert any("resources changed" in m for m in run.messages)  # type: ignore[attr-defined]
    assert run.status.element("dmc").spec["resources"]["walltime"] == "01:00:00"  # type: ignore[union-attr]


def test_walkers_change_redoes_the_element(h2_copy: Path) -> None:
    text = (h2_copy / "plan.toml").read_text()
    dmc_at = text.index('method = "dmc"')
    changed = text[dmc_at:].replace("nconfig = 100", "nconfig = 120", 1)
    (h2_copy / "plan.toml").write_text(text[:dmc_at] + changed)
    assert states(load_job(h2_copy)) == ["done", "done", "done", "planned"]


def test_step_added_at_the_end(h2_copy: Path) -> None:
    plan = h2_copy / "plan.toml"
    text = plan.read_text().replace("[[jobs]]", '[[steps]]\nname = "dmc2"\ncode = "pyqmc"\nmethod = "dmc"\n'
                                    'nconfig = 100\ntstep = 0.01\nnblocks = 12\nwarmup = 2\n\n[[jobs]]')
    plan.write_text(text)
    run = load_job(h2_copy)
    assert states(run) == ["done"] * 4 + ["planned"]


def test_step_renamed_is_refused_with_what_changed(h2_copy: Path) -> None:
    edit(h2_copy, 'name = "vmc"', 'name = "vmc1"')
    with pytest.raises(PlanConflict, match="vmc1"):
        load_job(h2_copy)
    proc = autogenv2("run", str(h2_copy / "plan.toml"))
    assert proc.returncode == 1 and "steps may be added but not removed" in proc.stdout


def test_job_removed_from_plan_is_left_alone(h2_copy: Path) -> None:
    plan = h2_copy / "plan.toml"
    other = 'id = "other"\nscf = { atom = "H 0 0 0; H 0 0 3.0" }'
    plan.write_text(plan.read_text().replace('id = "h2"', other))
    before = (h2_copy / "runs" / "h2" / "status.json").read_text()
    autogenv2("run", str(plan))
    autogenv2("cancel", str(plan))
    assert (h2_copy / "runs" / "h2" / "status.json").read_text() == before
