"""The Manager's state machine on real runs: failure reasons, retry caps, walltime kills as progress."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from autogenv2 import Job, Plan, Step, stats, watch
from autogenv2.codes.pyqmc.reader import read_walker_groups
from autogenv2.runners.base import Resources
from autogenv2.states import State
from autogenv2.status import JobStatus
from conftest import loaded_walltime

pytestmark = pytest.mark.slow
H2 = {"atom": "H 0 0 0; H 0 0 1.4", "unit": "bohr", "basis": "cc-pvdz"}


def run_plan(root: Path, steps: list[Step], job_id: str = "j") -> JobStatus:
    plan = Plan(root=root, jobs=[Job(id=job_id, steps=steps)]).check()
    # up to 15 minutes of passes: a walltime-sized DMC under load 7 needed more than 600 (3 minutes)
    watch(plan, interval=0.3, on_pass=lambda report: None, max_passes=3000)
    status = JobStatus.load(root / job_id)
    assert status is not None
    return status


def test_unconverged_scf_fails_with_that_reason_and_no_retry(tmp_path: Path) -> None:
    status = run_plan(tmp_path, [Step(name="scf", code="pyscf", method="uhf",
                                      options={**H2, "max_cycle": 1})])
    scf = status.element("scf")
    assert scf.state is State.failed and "did not converge" in scf.reason
    assert len(scf.attempts) == 1


def test_python_error_is_reported_with_its_message(tmp_path: Path) -> None:
    """Two atoms on one spot: the molecule builds (so the plan-load check passes) but the SCF's overlap
    matrix is singular, and PySCF raises at run time."""
    status = run_plan(tmp_path, [Step(name="scf", code="pyscf", method="rhf",
                                      options={"atom": "H 0 0 0; H 0 0 0", "basis": "cc-pvdz"})])
    scf = status.element("scf")
    assert scf.state is State.failed and len(scf.attempts) == 1
    assert "LinAlgError" in scf.reason and "singular" in scf.reason and scf.attempts[0].exit_code == 1


def test_retries_are_capped(tmp_path: Path) -> None:
    """A run killed every time (walltime far too short) is retried max_retries times, then failed."""
    step = Step(name="scf", code="pyscf", method="rhf", options=H2, max_retries=2,
                resources=Resources(walltime="0.2"))
    scf = run_plan(tmp_path, [step]).element("scf")
    assert scf.state is State.failed
    assert len(scf.attempts) == 3 and all(a.reason == "walltime" for a in scf.attempts)
    assert "retries exhausted" in scf.reason


def test_walltime_kill_is_progress_and_blocks_merge(tmp_path: Path) -> None:
    """DMC killed by a short walltime continues from its walkers until all blocks are done."""
    walltime, factor = loaded_walltime(5)  # a loaded machine gets more time and proportionally more work
    nblocks = round(300 * factor)  # 150 blocks took 4.77 s on an idle machine: inside the walltime
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2),
             Step(name="dmc", code="pyqmc", method="dmc", resources=Resources(walltime=str(walltime)),
                  options={"nconfig": 200, "nblocks": nblocks, "tstep": 0.02, "warmup": 10, "seed": 2})]
    dmc = run_plan(tmp_path, steps).element("dmc")
    assert dmc.state is State.done, dmc.reason
    killed = [a for a in dmc.attempts if a.reason == "walltime"]
    assert len(killed) >= 1 and len(dmc.attempts) >= 2, f"walltime {walltime} s: {dmc.attempts}"
    blocks = [a.blocks for a in dmc.attempts]
    assert blocks == sorted(blocks) and blocks[-1] == nblocks, blocks
    path = tmp_path / "j" / "dmc" / "dmc.hdf5"
    with h5py.File(path, "r") as handle:
        assert list(handle["block"][()]) == list(range(nblocks)), "no block lost or repeated"
        assert handle["energygroups"].shape == (nblocks, 16), "each population's blocks merge too"
    # the published error (issue 14): the scatter of the 16 populations over all merged blocks
    populations = read_walker_groups(path, 200, nblocks)
    assert populations is not None and populations.populations
    warmup = dmc.result["warmup"]
    with h5py.File(path, "r") as handle:  # the all-walker mean, as PyQMC weights it
        total, weight = np.real(handle["energytotal"][warmup:]), handle["weight"][warmup:]
    assert dmc.result["energy"] == pytest.approx(np.sum(total * weight) / np.sum(weight), abs=1e-12)
    shift = populations.series()[warmup:].mean() - dmc.result["energy"]
    assert dmc.result["population_shift"] == pytest.approx(shift, abs=1e-12)
    merged = stats.precision_walkers(populations.means, populations.sizes, warmup, populations=True)
    assert dmc.result["error"] == pytest.approx(merged.error, abs=1e-12)
    assert abs(dmc.result["energy"] - (-1.17447)) < 4 * dmc.result["error"] + 0.003  # exact H2, timestep bias


def test_core_hour_cap_fails_the_element_with_the_figures(tmp_path: Path) -> None:
    step = Step(name="mc", code="toy", method="mc", max_core_hours=0.0003,  # about one second
                options={"nblocks": 400, "seconds_per_block": 0.02, "warmup": 0},
                resources=Resources(walltime="2"))
    element = run_plan(tmp_path, [step]).element("mc")
    assert element.state is State.failed
    assert "core-hours of the 0.0003 allowed" in element.reason
    assert 1 <= len(element.attempts) < 5 and element.result["blocks"] < 400


def test_max_attempts_caps_continuations(tmp_path: Path) -> None:
    step = Step(name="mc", code="toy", method="mc", max_attempts=2,
                options={"nblocks": 400, "seconds_per_block": 0.02, "warmup": 0},
                resources=Resources(walltime="1.5"))
    element = run_plan(tmp_path, [step]).element("mc")
    assert element.state is State.failed and "gave up after 2 attempts" in element.reason


def test_attempts_are_sized_to_stop_before_the_walltime(tmp_path: Path) -> None:
    """After one measured attempt, later ones end cleanly before the walltime instead of being killed."""
    step = Step(name="mc", code="toy", method="mc", resources=Resources(walltime="3"),
                options={"nblocks": 150, "seconds_per_block": 0.05, "warmup": 0})
    element = run_plan(tmp_path, [step]).element("mc")
    assert element.state is State.done and element.result["blocks"] == 150
    first, *later = element.attempts
    assert first.reason == "walltime", "the first attempt has no measurement: it runs until killed"
    clean = [a for a in later if a.exit_code == 0 and a.reason == ""]
    assert len(clean) >= 2 and len(clean) >= len(later) - 1, [(a.blocks, a.reason) for a in later]
    assert all((a.seconds or 0) < 3.0 for a in clean)
