"""The PyQMC optimization Reader publishes honest per-iteration errors (benchmarks/calibration_opt.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from autogenv2 import errorbar, stats
from autogenv2.codes.pyqmc.reader import OptimizeReader, iteration_error_factor


def test_pyqmc_per_iteration_error_covers_95_percent_only_with_the_factor() -> None:
    """PyQMC's error of an iteration: np.std of its 10 block means (ddof 0) / √10. Independent
    blocks: ±2 stated σ cover 91 % (Student's t, 9 dof); with the factor 93–96 %."""
    rng = np.random.default_rng(5)
    blocks = rng.normal(size=(20000, 10))
    mean, stated = blocks.mean(axis=1), blocks.std(axis=1) / math.sqrt(10)
    factor = iteration_error_factor({"vmcoptions": {"nblocks": 10}})
    assert factor == pytest.approx(math.sqrt(10 / 9) * errorbar.small_sample_factor(9))
    assert np.mean(np.abs(mean) <= 2 * stated) < 0.92
    assert 0.93 < np.mean(np.abs(mean) <= 2 * factor * stated) < 0.96
    assert 0.66 < np.mean(np.abs(mean) <= factor * stated) < 0.72
    assert iteration_error_factor({}) == factor, "PyQMC's default is 10 blocks"
    assert iteration_error_factor({"vmcoptions": {"nblocks": 40}}) < factor


def _opt_dir(tmp_path: Path, energy: np.ndarray, error: np.ndarray, nblocks: int | None) -> Path:
    import h5py

    options: dict[str, object] = {"max_iterations": int(energy.size)}
    if nblocks is not None:
        options["vmcoptions"] = {"nblocks": nblocks, "nsteps_per_block": 10, "tstep": 0.5}
    (tmp_path / "params.json").write_text(json.dumps({"output": "opt.hdf5", "options": options}))
    with h5py.File(tmp_path / "opt.hdf5", "w") as handle:
        handle["energy"], handle["energy_error"] = energy, error
    return tmp_path


def test_reader_publishes_the_corrected_trace_and_keeps_the_stated_error(tmp_path: Path) -> None:
    energy = np.array([-1.10, -1.15, -1.165, -1.168, -1.1685, -1.1679, -1.1683, -1.1681])
    error = np.full(energy.size, 0.001)
    read = OptimizeReader().read(_opt_dir(tmp_path, energy, error, 10), 0)
    res = read.results
    factor = iteration_error_factor({})
    assert read.verdict.value == "complete" and res["reliable"] is True
    assert res["error_stated"] == 0.001 and res["error"] == pytest.approx(0.001 * factor)
    assert res["error_trace"] == pytest.approx(list(error * factor))
    assert res["energy"] == energy[-1]


def test_a_significant_scatter_still_inflates_beyond_the_factor(tmp_path: Path) -> None:
    """Converged by the range test, but the trace scatters 2–3× its stated errors: the published
    error is the stated one times the scatter, which exceeds the small-sample factor."""
    rng = np.random.default_rng(3)
    energy = -1.168 + 0.0025 * rng.normal(size=30)
    energy[-3:] = [-1.1680, -1.1681, -1.1679]
    read = OptimizeReader(tolerance_sigmas=6.0).read(_opt_dir(tmp_path, energy, np.full(30, 0.001), 20), 0)
    res = read.results
    assert res["trace_scatter"] > 1.5
    assert res["error"] == pytest.approx(0.001 * res["trace_scatter"])
    assert res["error"] > 0.001 * iteration_error_factor({"vmcoptions": {"nblocks": 20}})


def _grouped_dir(tmp_path: Path, groups: np.ndarray, nconfig: int) -> tuple[Path, np.ndarray, np.ndarray]:
    """An opt.hdf5 whose energies are the walker-weighted means of ``groups`` (iterations, blocks, G)."""
    import h5py

    tmp_path.mkdir(parents=True, exist_ok=True)
    sizes = np.array([p.size for p in np.array_split(np.arange(nconfig), groups.shape[2])], dtype=float)
    energy = groups.mean(axis=1) @ sizes / nconfig
    error = np.full(energy.size, 0.001)
    _opt_dir(tmp_path, energy, error, groups.shape[1])
    params = json.loads((tmp_path / "params.json").read_text())
    params["options"]["nconfig"], params["walker_groups"] = nconfig, groups.shape[2]
    (tmp_path / "params.json").write_text(json.dumps(params))
    with h5py.File(tmp_path / "opt.hdf5", "a") as handle:
        handle["energygroups"] = groups
    return tmp_path, sizes, error


def test_per_iteration_errors_come_from_the_walker_groups_scatter(tmp_path: Path) -> None:
    """Group run means scattering 4 mHa over 32 groups of 100 walkers: the iteration's error is their
    weighted scatter × t₃₁(0.9)/z(0.9), whatever PyQMC stated; error_stated stays PyQMC's."""
    rng = np.random.default_rng(8)
    groups = -1.168 + 0.004 * rng.normal(size=(6, 10, 32))
    directory, sizes, error = _grouped_dir(tmp_path, groups, 100)
    res = OptimizeReader(tolerance_sigmas=100.0).read(directory, 0).results
    runs = groups.mean(axis=1)
    assert res["error_trace"] == pytest.approx([stats.between_groups_error(r, sizes) for r in runs])
    from scipy.special import stdtrit
    plain = runs[-1].std(ddof=1) / math.sqrt(32)  # 32 groups of 3 or 4 walkers: nearly equal weights
    margin = float(stdtrit(31, 0.9)) / stats.normal_quantile(0.9)
    assert res["error_trace"][-1] == pytest.approx(plain * margin, rel=0.05)
    assert res["error_stated"] == 0.001 and res["error"] >= res["error_trace"][-1]


def test_groups_that_do_not_follow_the_iterations_fall_back_to_the_factor(tmp_path: Path) -> None:
    """One iteration short (a kill between PyQMC's appends) or not PyQMC's energies: the Reader uses
    PyQMC's error × the small-sample factor, as for runs without groups."""
    import h5py

    rng = np.random.default_rng(9)
    groups = -1.168 + 0.004 * rng.normal(size=(5, 10, 8))
    factor = iteration_error_factor({})
    for cut in ("short", "shifted"):
        directory, _, error = _grouped_dir(tmp_path / cut, groups, 40)
        with h5py.File(directory / "opt.hdf5", "a") as handle:
            del handle["energygroups"]
            handle["energygroups"] = groups[:4] if cut == "short" else groups + 1e-4
        res = OptimizeReader(tolerance_sigmas=100.0).read(directory, 0).results
        assert res["error_trace"] == pytest.approx(list(error * factor)), cut
