"""PyQMC DMC split into independent populations, on real runs: recorded by our run.py, read and
published by the Reader (the error of their scatter, docs/benchmarks.md "PyQMC DMC: populations")."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from autogenv2 import stats
from autogenv2.codes.pyqmc.reader import (
    DMC_SLOW_MODE,
    POPULATION_SHIFT_LIMIT,
    MCReader,
    mark_small_populations,
    read_walker_groups,
)
from autogenv2.codes.pyqmc.script import SCRIPT
from autogenv2.codes.pyqmc.writer import DMCWriter
from autogenv2.states import Verdict
from conftest import run_pyqmc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dmc_run(chkfile: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 blocks of 42 walkers in 4 populations (11, 11, 10, 10 walkers)."""
    directory = tmp_path_factory.mktemp("dmc") / "dmc"
    run_pyqmc(directory, chkfile, DMCWriter(nconfig=42, nblocks=30, tstep=0.02, seed=5, walker_groups=4))
    return directory


def test_each_population_records_its_weighted_energy_and_together_they_are_pyqmcs(dmc_run: Path) -> None:
    """Σ_g (Σ w·E)_g / Σ_g (Σ w)_g is PyQMC's own block energy over all walkers, to rounding."""
    with h5py.File(dmc_run / "dmc.hdf5", "r") as handle:
        total = np.real(handle["energytotal"][()])
        sums, weight = handle["energygroups"][()], handle["energygroupweight"][()]
    assert sums.shape == weight.shape == (30, 4) and np.all(weight > 0)
    assert np.abs(sums.sum(axis=1) / weight.sum(axis=1) - total).max() < 1e-12
    found = read_walker_groups(dmc_run / "dmc.hdf5", 42, 30)
    assert found is not None and found.populations and found.sizes.tolist() == [11.0, 11.0, 10.0, 10.0]
    assert np.array_equal(found.means, sums / weight)
    assert np.ptp(found.means.mean(axis=0)) > 0, "four populations, four different run means"


def test_the_published_error_is_the_populations_scatter(dmc_run: Path) -> None:
    read = MCReader(warmup=5).read(dmc_run, 0)
    assert read.verdict is Verdict.complete
    found = read_walker_groups(dmc_run / "dmc.hdf5", 42, 30)
    assert found is not None
    runs = found.means[5:].mean(axis=0)
    with h5py.File(dmc_run / "dmc.hdf5", "r") as handle:  # the all-walker mean, as PyQMC weights it
        total, weight = np.real(handle["energytotal"][5:]), handle["weight"][5:]
    assert read.results["energy"] == pytest.approx(np.sum(total * weight) / np.sum(weight), abs=1e-12)
    # the shift combing each population on its own made: small against the error for H2
    shift = runs @ found.sizes / 42 - read.results["energy"]
    assert read.results["population_shift"] == pytest.approx(shift, abs=1e-12)
    assert shift != 0 and abs(shift) < POPULATION_SHIFT_LIMIT * read.results["error"]
    between = stats.between_groups_error(runs, found.sizes)
    published = stats.precision_walkers(found.means, found.sizes, 5, populations=True)
    assert read.results["error"] == published.error == between
    assert read.results["error_method"] == "4 DMC populations"
    assert read.results["error_dof"] == pytest.approx(3, rel=1e-9)
    assert read.results["reliable"] is False and "degrees of freedom" in read.results["unreliable_reason"]
    assert DMC_SLOW_MODE not in read.results["unreliable_reason"]


def _branch(parts: list[np.ndarray]):  # type: ignore[no-untyped-def]
    """run.py's own ``branch`` function, compiled from the script the Writer writes."""
    tree = ast.parse(SCRIPT.format(method="DMC"))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "branch")
    namespace = {"np": np, "parts": parts}
    exec(compile(ast.Module(body=[node], type_ignores=[]), "run.py", "exec"), namespace)
    return namespace["branch"]


def test_the_comb_keeps_every_walker_in_its_population() -> None:
    """PyQMC's OpenConfigs, 3 populations; one walker of each carries most of its population's weight:
    after the comb every walker is a copy of one of its own population, most of them of that walker,
    and every walker has the same weight (the mean), so no population gains on another."""
    from pyqmc.configurations.coord import OpenConfigs

    parts = np.array_split(np.arange(30), 3)
    configs = OpenConfigs(np.arange(30.0)[:, None, None] * np.ones((30, 2, 3)))
    weights = np.full(30, 0.1)
    weights[[0, 10, 20]] = 5.0
    mean = weights.mean()
    np.random.seed(0)
    configs, weights, info = _branch(parts)(configs, weights)
    origin = configs.configs[:, 0, 0].astype(int)
    for g, part in enumerate(parts):
        assert set(origin[part]) <= set(part.tolist()), (g, origin[part])
        assert np.sum(origin[part] == part[0]) >= 8
    assert np.allclose(weights, mean) and info["max branches"] >= 8


def test_the_writer_asks_for_populations_of_at_least_ten_walkers(tmp_path: Path) -> None:
    for writer, groups in [(DMCWriter(), 16), (DMCWriter(nconfig=200), 16), (DMCWriter(nconfig=100), 10),
                           (DMCWriter(nconfig=45), 4), (DMCWriter(nconfig=19), 0),
                           (DMCWriter(walker_groups=0), 0), (DMCWriter(walker_groups=8, nconfig=400), 8)]:
        writer.write(tmp_path, {"chkfile": tmp_path / "mf.chk"})
        assert json.loads((tmp_path / "params.json").read_text())["walker_groups"] == groups


def test_a_continued_dmc_keeps_the_populations_it_was_begun_with(chkfile: Path, tmp_path: Path) -> None:
    """A file begun with one population continues with one (and keeps its mark); a file begun with 4
    populations continues with 4 when the Writer asks for 2: each block's columns stay one population's."""
    one, four = tmp_path / "one", tmp_path / "four"
    run_pyqmc(one, chkfile, DMCWriter(nconfig=42, nblocks=8, seed=3, walker_groups=0))
    run_pyqmc(one, chkfile, DMCWriter(nconfig=42, nblocks=14, seed=3, walker_groups=4))
    run_pyqmc(four, chkfile, DMCWriter(nconfig=42, nblocks=8, seed=3, walker_groups=4))
    run_pyqmc(four, chkfile, DMCWriter(nconfig=42, nblocks=14, seed=3, walker_groups=2))
    with h5py.File(one / "dmc.hdf5", "r") as handle:
        assert "energygroups" not in handle and len(handle["energytotal"]) == 14
    with h5py.File(four / "dmc.hdf5", "r") as handle:
        assert handle["energygroups"].shape == (14, 4) and len(handle["energytotal"]) == 14
    read_one = MCReader(warmup=2).read(one, 0)
    assert read_one.results["error_method"] == "blocks"
    assert DMC_SLOW_MODE in read_one.results["unreliable_reason"]
    found = read_walker_groups(four / "dmc.hdf5", 42, 14)
    assert found is not None and found.means.shape == (14, 4)


def test_populations_whose_own_energies_move_the_estimate_mark_the_error_unreliable() -> None:
    """A shift over POPULATION_SHIFT_LIMIT σ: not reliable, the figures and the fix in the reason (the
    error itself stays); one under it leaves the error as it was."""
    results = {"energy": -1.1740, "error": 0.001, "population_shift": 0.0006, "reliable": True}
    mark_small_populations(results, 12)
    assert results["reliable"] is False and results["error"] == 0.001
    assert "+0.60 mHa (0.60σ)" in results["unreliable_reason"]
    reason = results["unreliable_reason"]
    assert "populations of 12 walkers" in reason and "nconfig" in reason
    fine = {"energy": -1.1740, "error": 0.001, "population_shift": -0.0002, "reliable": True}
    mark_small_populations(fine, 12)
    assert fine["reliable"] is True and "unreliable_reason" not in fine
