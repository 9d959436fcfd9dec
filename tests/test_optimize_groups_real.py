"""PyQMC OPTIMIZE's walker groups, on real runs: recorded per iteration by our run.py, aligned with
PyQMC's own iterations through continuations and kills, and read into the per-iteration errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from autogenv2 import stats
from autogenv2.codes.pyqmc.reader import OptimizeReader, iteration_error_factor
from autogenv2.codes.pyqmc.writer import OptimizeWriter
from autogenv2.states import Verdict
from conftest import run_pyqmc

pytestmark = pytest.mark.slow


def small(iterations: int, groups: int = 8) -> OptimizeWriter:
    """20 walkers in 8 groups (4 of three walkers, 4 of two); 5 blocks of 4 steps per iteration; a final
    VMC of 2 + 10 blocks."""
    return OptimizeWriter(nconfig=20, max_iterations=iterations, seed=11, walker_groups=groups,
                          vmc_nblocks=5, vmc_nsteps_per_block=4, final_vmc_warmup_blocks=2)


def group_data(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with h5py.File(directory / "opt.hdf5", "r") as handle:
        return (np.real(handle["energy"][()]), np.real(handle["energy_error"][()]),
                np.asarray(handle["energygroups"][()]), np.asarray(handle["iteration"][()]))


SIZES = np.array([3, 3, 3, 3, 2, 2, 2, 2], dtype=float)


def test_groups_give_pyqmcs_energies_and_the_published_errors(chkfile: Path, tmp_path: Path) -> None:
    """Each iteration's walker-weighted mean of its groups is PyQMC's energy (to 1e-10); the Reader
    publishes the groups' scatter as the per-iteration error and keeps PyQMC's as error_stated; a
    continuation (+1 iteration) appends exactly one more iteration of groups."""
    run_pyqmc(tmp_path, chkfile, small(2))
    energy, error, groups, iteration = group_data(tmp_path)
    assert groups.shape == (2, 5, 8) and list(iteration) == [0, 1]
    runs = groups.mean(axis=1)
    assert np.abs(runs @ SIZES / SIZES.sum() - energy).max() < 1e-10
    read = OptimizeReader(tolerance_sigmas=100.0).read(tmp_path, 0)
    expected = [stats.between_groups_error(run, SIZES) for run in runs]
    assert read.results["error_trace"] == pytest.approx(expected, rel=1e-12)
    assert read.results["error_trace"] != pytest.approx(list(error * iteration_error_factor({})), rel=1e-3)
    assert read.results["error_stated"] == error[-1]
    check_final_vmc(tmp_path, read.results, iterations=2)
    run_pyqmc(tmp_path, chkfile, small(3))  # the Writer's continuation of the same opt.hdf5
    energy, _, groups, iteration = group_data(tmp_path)
    assert groups.shape == (3, 5, 8) and list(iteration) == [0, 1, 2]
    assert np.abs(groups.mean(axis=1) @ SIZES / SIZES.sum() - energy).max() < 1e-10
    assert np.allclose(groups[:2].mean(axis=1), runs, rtol=0, atol=0), "earlier iterations untouched"
    check_final_vmc(tmp_path, OptimizeReader(tolerance_sigmas=100.0).read(tmp_path, 0).results, iterations=3)


def check_final_vmc(directory: Path, results: dict[str, Any], iterations: int) -> None:
    """The published energy is the VMC of the parameters handed on (opt.hdf5's ``wf``), made after
    the last iteration: 10 blocks of 4 steps in 8 groups, tagged with the iterations it follows; its
    error is its groups' scatter (or the trace's, when larger)."""
    with h5py.File(directory / "final.hdf5", "r") as handle:
        assert int(handle.attrs["iterations"]) == iterations
        means = np.asarray(handle["energygroups"][()])
        total = np.real(handle["energytotal"][()])
    assert means.shape == (10, 8)
    assert np.abs(means @ SIZES / SIZES.sum() - total).max() < 1e-10
    runs = means.mean(axis=0)
    assert results["energy"] == pytest.approx(float(runs @ SIZES / SIZES.sum()), abs=1e-12)
    assert results["energy"] != results["energy_trace"][-1]
    assert results["error"] >= stats.between_groups_error(runs, SIZES) * (1 - 1e-12)
    assert results["energy_of"] == "a VMC of the final parameters" and results["final_vmc_blocks"] == 10


def test_a_missing_or_stale_final_vmc_is_run_again(chkfile: Path, tmp_path: Path) -> None:
    """A final VMC tagged with other iterations than opt.hdf5 holds (a kill during it, or during the next
    attempt's iterations) is not published: a converged trace is then incomplete, and running the same
    run.py again adds no iteration and makes the final VMC."""
    reader, writer = OptimizeReader(tolerance_sigmas=100.0), small(3)
    run_pyqmc(tmp_path, chkfile, writer)
    assert reader.read(tmp_path, 0).verdict == Verdict.complete
    with h5py.File(tmp_path / "final.hdf5", "a") as handle:
        handle.attrs["iterations"] = 2
    read = reader.read(tmp_path, -9)
    assert read.verdict == Verdict.incomplete and "did not finish" in read.reason
    assert read.results["energy"] == read.results["energy_trace"][-1] and "energy_of" not in read.results
    writer.extend(read)
    run_pyqmc(tmp_path, chkfile, writer)
    read = reader.read(tmp_path, 0)
    assert read.verdict == Verdict.complete and read.results["iterations"] == 3
    check_final_vmc(tmp_path, read.results, iterations=3)


def test_a_run_killed_mid_iteration_continues_without_duplicates(chkfile: Path, tmp_path: Path) -> None:
    """SIGKILL once the first iteration is written: the iteration in progress leaves nothing, and the
    rerun appends the groups of exactly the iterations PyQMC appends."""
    writer = small(3)
    writer.write(tmp_path, {"chkfile": chkfile})
    proc = subprocess.Popen([sys.executable, "run.py"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while (writer.blocks_written(tmp_path) or 0) < 1 and proc.poll() is None:
            assert time.monotonic() < deadline, "the first iteration never appeared"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (writer.blocks_written(tmp_path) or 0) < 3, "the kill came after the run finished"
    run_pyqmc(tmp_path, chkfile, writer)
    energy, _, groups, iteration = group_data(tmp_path)
    assert groups.shape == (3, 5, 8) and list(iteration) == [0, 1, 2]
    assert np.abs(groups.mean(axis=1) @ SIZES / SIZES.sum() - energy).max() < 1e-10


def test_a_file_begun_without_groups_continues_without_them(chkfile: Path, tmp_path: Path) -> None:
    """Runs written before walker groups existed (or with walker_groups = 0): the continuation writes
    none, and the Reader keeps PyQMC's error × the small-sample factor."""
    run_pyqmc(tmp_path, chkfile, small(1, groups=0))
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["walker_groups"] == 0 and "final_vmc" not in params
    assert not (tmp_path / "final.hdf5").exists()
    run_pyqmc(tmp_path, chkfile, small(2))
    with h5py.File(tmp_path / "opt.hdf5", "r") as handle:
        assert "energygroups" not in handle and len(handle["energy"]) == 2
        error = np.real(handle["energy_error"][()])
    read = OptimizeReader(tolerance_sigmas=100.0).read(tmp_path, 0)
    factor = iteration_error_factor({"vmcoptions": {"nblocks": 5}})
    assert read.results["error_trace"] == pytest.approx(list(error * factor), rel=1e-12)
