"""PyQMC VMC's walker groups, on real runs: recorded by our run.py, read and published by the Reader.

The error bar of a VMC with walker groups is stats.precision_walkers on the merged file; it is
checked here against pyblock's reblocked error of the same block series (an independent oracle).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from pyblock.blocking import find_optimal_block, reblock as pyblock_reblock

from autogenv2 import Job, Plan, Step, errorbar, stats, watch
from autogenv2.codes.pyqmc.reader import MCReader, read_walker_groups
from autogenv2.codes.pyqmc.writer import VMCWriter
from autogenv2.runners.base import Resources
from autogenv2.states import State, Verdict
from autogenv2.status import JobStatus
from conftest import H2_RHF as H2, loaded_walltime, run_pyqmc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vmc_run(chkfile: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 one-step blocks of 50 walkers in 32 groups (18 of two walkers, 14 of one)."""
    directory = tmp_path_factory.mktemp("vmc") / "vmc"
    run_pyqmc(directory, chkfile, VMCWriter(nconfig=50, nblocks=400, nsteps_per_block=1, seed=7))
    return directory


def test_groups_are_recorded_and_their_walker_weighted_mean_is_the_block_energy(vmc_run: Path) -> None:
    with h5py.File(vmc_run / "vmc.hdf5", "r") as handle:
        energy = np.real(handle["energytotal"][()])
        assert handle["energygroups"].shape == (400, 32)
    walkers = read_walker_groups(vmc_run / "vmc.hdf5", 50, energy.size)
    assert walkers is not None and sorted(set(walkers.sizes)) == [1.0, 2.0] and walkers.sizes.sum() == 50
    assert np.abs(walkers.means @ walkers.sizes / 50 - energy).max() < 1e-12


def test_published_error_is_the_walker_error_and_agrees_with_pyblock(vmc_run: Path) -> None:
    """The Reader publishes precision_walkers of the file; pyblock's reblocked error of the same 395
    blocks agrees with it within 3 combined standard deviations, and the walker error states itself
    at least 3× more precisely than pyblock does."""
    read = MCReader(warmup=5).read(vmc_run, 0)
    assert read.verdict is Verdict.complete
    walkers = read_walker_groups(vmc_run / "vmc.hdf5", 50, 400)
    assert walkers is not None
    prec = stats.precision_walkers(walkers.means, walkers.sizes, warmup=5)
    assert read.results["error"] == prec.error and read.results["error_method"] == "32 walker groups"
    with h5py.File(vmc_run / "vmc.hdf5", "r") as handle:
        series = np.real(handle["energytotal"][()])[5:]
    assert read.results["energy"] == pytest.approx(series.mean(), abs=1e-12)
    levels = pyblock_reblock(series)
    optimum = levels[find_optimal_block(series.size, levels)[0]]
    theirs, theirs_error = float(optimum.std_err), float(optimum.std_err_err)
    assert read.results["error_reblocked"] == pytest.approx(theirs, rel=1e-10)
    combined = np.hypot(prec.error * prec.relative, theirs_error)
    assert abs(prec.error - theirs) < 3 * combined, (prec.error, theirs, combined)
    assert theirs_error / theirs > 3 * prec.relative


def test_a_block_cut_between_its_two_writes_is_dropped(vmc_run: Path, tmp_path: Path) -> None:
    """A kill after energytotal but before energygroups of the last block: that block is not counted."""
    copy = tmp_path / "vmc"
    shutil.copytree(vmc_run, copy)
    with h5py.File(copy / "vmc.hdf5", "a") as handle:
        handle["energygroups"].resize(399, axis=0)
    read = MCReader(warmup=5).read(copy, -9)
    assert read.results["blocks"] == 399 and read.verdict is Verdict.incomplete


def test_a_file_begun_without_groups_is_continued_without_them(chkfile: Path, tmp_path: Path) -> None:
    """Runs written before walker groups existed (or with walker_groups = 0) continue in the same file."""
    writer = VMCWriter(nconfig=20, nblocks=15, nsteps_per_block=1, seed=3, walker_groups=0)
    run_pyqmc(tmp_path, chkfile, writer)
    writer.walker_groups, writer.nblocks = 32, 25
    run_pyqmc(tmp_path, chkfile, writer)
    with h5py.File(tmp_path / "vmc.hdf5", "r") as handle:
        assert "energygroups" not in handle and len(handle["energytotal"]) == 25
    read = MCReader(warmup=2).read(tmp_path, 0)
    assert read.results["blocks"] == 25 and read.results["error_method"] == "blocks"
    series = np.real(h5py.File(tmp_path / "vmc.hdf5", "r")["energytotal"][()])
    # the block series' published error (issue 14: errorbar.publish); pyblock's choice stays beside it
    assert read.results["error"] == pytest.approx(errorbar.publish(series, warmup=2).error, rel=1e-12)
    assert read.results["error_reblocked"] == pytest.approx(stats.estimate(series, warmup=2).error, rel=1e-12)


def test_walltime_killed_vmc_to_a_target_error_merges_its_groups(tmp_path: Path) -> None:
    """VMC with a target error (thousands of blocks) under a 5-second walltime that the run overruns:
    killed attempts count, the run continues in one file, and the final error is precision_walkers of
    all its blocks, within the target."""
    walltime, factor = loaded_walltime(5)  # a loaded machine: more time, and a target needing more blocks
    # One-step blocks run at about 100 per second on an idle 2-core machine (measured): a first attempt of
    # 800 blocks overruns the walltime, and the target needs about 1,000. A loaded machine gets a longer
    # walltime, and proportionally more blocks in the first attempt and to the target.
    target, nblocks = round(0.004 / factor ** 0.5, 6), round(800 * factor)
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2),
             Step(name="vmc", code="pyqmc", method="vmc", resources=Resources(walltime=str(walltime)),
                  options={"nconfig": 50, "nblocks": nblocks, "nsteps_per_block": 1, "warmup": 5, "seed": 2,
                           "target_error": target})]
    plan = Plan(root=tmp_path, jobs=[Job(id="j", steps=steps)]).check()
    watch(plan, interval=0.3, on_pass=lambda report: None, max_passes=600)
    status = JobStatus.load(tmp_path / "j")
    assert status is not None
    vmc = status.element("vmc")
    assert vmc.state is State.done, vmc.reason
    killed = [a for a in vmc.attempts if a.reason == "walltime"]
    assert killed and len(vmc.attempts) >= 2, (walltime, vmc.attempts)
    path = tmp_path / "j" / "vmc" / "vmc.hdf5"
    with h5py.File(path, "r") as handle:
        assert list(handle["block"][()]) == list(range(len(handle["block"]))), "no block lost or repeated"
        blocks = len(handle["energytotal"])
    walkers = read_walker_groups(path, 50, blocks)
    assert walkers is not None and vmc.result["blocks"] == blocks > nblocks
    merged = stats.precision_walkers(walkers.means, walkers.sizes, warmup=5)
    assert vmc.result["error"] == pytest.approx(merged.error, rel=1e-12)
    assert vmc.result["error_bound"] <= target and vmc.result["error"] <= target


def test_writers_ask_for_groups_only_where_walkers_are_independent(tmp_path: Path) -> None:
    """VMC and OPTIMIZE (each iteration's VMC): min(walker_groups, nconfig); DMC (branching couples the
    walkers of a population): populations each branched on its own (tests/test_dmc_populations_real.py)."""
    from autogenv2.codes.pyqmc.writer import DMCWriter, OptimizeWriter
    chk = tmp_path / "mf.chk"
    for writer, groups in [(VMCWriter(nconfig=10), 10), (VMCWriter(nconfig=500), 32),
                           (VMCWriter(nconfig=500, walker_groups=0), 0), (DMCWriter(), 16),
                           (OptimizeWriter(), 32), (OptimizeWriter(nconfig=20), 20),
                           (OptimizeWriter(walker_groups=0), 0)]:
        writer.write(tmp_path, {"chkfile": chk})
        params = json.loads((tmp_path / "params.json").read_text())
        assert params.get("walker_groups") == groups, (type(writer).__name__, params)
