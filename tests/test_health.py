"""Health checks: each check on series with and without the problem, and the Manager's one fix."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autogenv2 import health


def ar1(n: int, phi: float = 0.3, sigma: float = 0.01, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal(0, sigma)
    return -1.17 + x


@pytest.mark.parametrize("seed", range(20))
def test_healthy_series_raise_nothing(seed: int) -> None:
    assert health.check_series(ar1(200, seed=seed), np.ones(200) + 0.01 * np.sin(np.arange(200)), 10) == []


def test_drift_is_an_equilibration_problem() -> None:
    energy = ar1(100) + np.where(np.arange(100) < 40, 0.05 * np.exp(-np.arange(100) / 15.0), 0.0)
    finding = health.equilibration(energy, 0)
    assert finding is not None and finding["check"] == "equilibration" and "σ" in finding["detail"]
    assert health.equilibration(energy, 60) is None, "a long enough warm-up cures it"


def test_weight_blow_up_is_a_population_problem() -> None:
    weights = np.ones(100)
    weights[70:] = np.linspace(1, 4, 30)
    assert health.population(weights, 10)["check"] == "population"  # type: ignore[index]
    assert health.population(np.ones(100), 10) is None
    assert health.population(None, 10) is None


def test_a_spike_is_flagged_with_its_block() -> None:
    energy = ar1(100)
    energy[57] += 1.0
    finding = health.spikes(energy, 5)
    assert finding is not None and "block 57" in finding["detail"]
    assert health.spikes(ar1(100), 5) is None


def test_every_check_has_a_fix_entry() -> None:
    assert set(health.FIXES) == {"equilibration", "population", "spikes"}


def _run_toy(root: Path, **options: object) -> "object":
    from autogenv2 import Job, Plan, Step, watch
    from autogenv2.status import JobStatus

    base = {"nblocks": 40, "sigma": 0.01, "phi": 0.2, "seconds_per_block": 0.0, "warmup": 0, "seed": 3}
    plan = Plan(root=root, jobs=[Job(id="t", steps=[Step(name="mc", code="toy", method="mc",
                                                          options={**base, **options})])]).check()
    watch(plan, interval=0.1, on_pass=lambda report: None, max_passes=300)
    status = JobStatus.load(root / "t")
    assert status is not None
    return status.element("mc")


def test_equilibration_fix_lengthens_the_warmup_once(tmp_path: Path) -> None:
    element = _run_toy(tmp_path, transient=0.3, transient_blocks=3.0)
    assert element.state.value == "done", element.reason
    fixes = [e for e in element.events if e["event"] == "health-fix"]
    assert [f["check"] for f in fixes] == ["equilibration"] and fixes[0]["reader"]["warmup"] == 20
    assert element.result["warmup"] == 20 and element.result["health"] == []
    assert element.result["energy"] == pytest.approx(-1.0, abs=0.01)


def test_population_blow_up_halves_the_timestep_and_redoes(tmp_path: Path) -> None:
    element = _run_toy(tmp_path, tstep=0.08, stable_tstep=0.05)
    assert element.state.value == "done", element.reason
    assert element.writer["tstep"] == pytest.approx(0.04)
    assert (tmp_path / "t" / "mc.archived-1" / "blocks.json").exists()
    assert [e["check"] for e in element.events if e["event"] == "health-fix"] == ["population"]


def test_a_problem_that_survives_its_fix_fails_the_element(tmp_path: Path) -> None:
    element = _run_toy(tmp_path, tstep=0.2, stable_tstep=0.05)  # halved once to 0.1: still unstable
    assert element.state.value == "failed"
    assert "still fails after its fix" in element.reason and "population" in element.reason
    assert element.writer["tstep"] == pytest.approx(0.1)


def test_health_on_recorded_real_qwalk_runs(tmp_path: Path) -> None:
    """Real engine output: QWalk's H-atom DMC has one outlier block; the H2 DMC is healthy."""
    import shutil

    from autogenv2.codes.qwalk.reader import QWalkReader
    from conftest import QWALK_CASES as cases

    for case, expected in (("repo_h_dmc", ["spikes"]), ("dmc_h2", [])):
        shutil.copytree(cases / case, tmp_path / case)
        result = QWalkReader().read(tmp_path / case, 0)
        assert [f["check"] for f in result.results["health"]] == expected, (case, result.results["health"])
