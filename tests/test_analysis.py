"""autogenv2.analysis: twist averaging and time-step extrapolation."""
from __future__ import annotations

import numpy as np
import pytest

from autogenv2.analysis import AnalysisError, extrapolate_timestep, twist_average, twist_weights_from_kpts
from autogenv2.errors import AutogenError

# --- twist averaging -------------------------------------------------------------------------------

def test_twist_average_by_hand() -> None:
    energies, errors, weights = [-10.0, -10.2, -10.1], [0.01, 0.02, 0.04], [1.0, 3.0, 4.0]
    mean, error = twist_average(energies, errors, weights)
    # Σw = 8; ΣwE = -10 - 30.6 - 40.4 = -81.0; Σw²σ² = 1e-4 + 9·4e-4 + 16·16e-4 = 0.0293
    assert mean == pytest.approx(-81.0 / 8, abs=1e-14)
    assert error == pytest.approx(np.sqrt(0.0293) / 8, rel=1e-12)
    assert error != pytest.approx(np.dot(weights, errors) / 8)  # the wrong (linear) combination


def test_twist_average_equal_weights_and_errors() -> None:
    mean, error = twist_average([1.0, 2.0, 3.0, 6.0], [0.2] * 4, [0.25] * 4)
    assert mean == pytest.approx(3.0)
    assert error == pytest.approx(0.2 / np.sqrt(4))


def test_twist_average_weights_are_relative() -> None:
    a = twist_average([1.0, 2.0], [0.1, 0.3], [1.0, 2.0])
    b = twist_average([1.0, 2.0], [0.1, 0.3], [10.0, 20.0])
    assert a == pytest.approx(b, rel=1e-14)


def test_twist_average_zero_weight_twist_is_ignored() -> None:
    assert twist_average([1.0, 99.0], [0.1, 50.0], [1.0, 0.0]) == pytest.approx((1.0, 0.1))


def test_twist_average_error_is_right_statistically() -> None:
    """Spread of the average over many synthetic twist sets equals the quoted error."""
    rng = np.random.default_rng(0)
    truth, errors, weights = np.array([-1.0, -1.3, -0.8]), np.array([0.01, 0.03, 0.02]), np.array([1, 6, 2.0])
    means = [twist_average(truth + rng.normal(size=3) * errors, errors, weights)[0] for _ in range(4000)]
    _, quoted = twist_average(truth, errors, weights)
    assert np.std(means) == pytest.approx(quoted, rel=0.05)
    assert np.mean(means) == pytest.approx(np.average(truth, weights=weights), abs=3 * quoted / np.sqrt(4000))


@pytest.mark.parametrize(
    ("energies", "errors", "weights", "name"),
    [
        ([1.0, 2.0], [0.1], [1.0, 1.0], "errors"),
        ([1.0, 2.0], [0.1, 0.1], [1.0, 1.0, 1.0], "weights"),
        ([[1.0, 2.0]], [0.1, 0.1], [1.0, 1.0], "energies"),
        ([1.0, 2.0], [0.1, 0.1], [1.0, -1.0], "weights"),
        ([1.0, 2.0], [0.1, -0.1], [1.0, 1.0], "errors"),
        ([1.0, 2.0], [0.1, 0.1], [0.0, 0.0], "weights"),
        ([1.0, np.nan], [0.1, 0.1], [1.0, 1.0], "energies"),
        ([], [], [], "energies"),
    ],
)
def test_twist_average_rejects_bad_input(energies, errors, weights, name: str) -> None:
    with pytest.raises(AnalysisError, match=f"^{name}"):
        twist_average(energies, errors, weights)


def test_analysis_error_is_autogen_and_value_error() -> None:
    assert issubclass(AnalysisError, AutogenError) and issubclass(AnalysisError, ValueError)


def test_twist_weights_uniform_mesh() -> None:
    kpts = np.random.default_rng(1).uniform(size=(8, 3))
    assert twist_weights_from_kpts(kpts) == pytest.approx(np.full(8, 0.125))


def test_twist_weights_from_pyqmc_counts() -> None:
    weights = twist_weights_from_kpts({"twists": np.zeros((3, 3)), "counts": np.array([1, 2, 5])})
    assert weights == pytest.approx([0.125, 0.25, 0.625])


def test_twist_weights_from_pyscf_symmetry() -> None:
    from pyscf.pbc import gto

    cell = gto.Cell(atom="He 0 0 0", a=np.eye(3) * 3.0, basis="sto-3g", verbose=0)
    cell.space_group_symmetry = True
    cell.build()
    kpts = cell.make_kpts([2, 2, 2], space_group_symmetry=True)
    weights = twist_weights_from_kpts(kpts)
    assert weights.shape == (kpts.nkpts_ibz,) and kpts.nkpts_ibz < 8
    assert weights.sum() == pytest.approx(1.0)
    assert weights * 8 == pytest.approx(np.round(weights * 8))  # multiplicities of the 2×2×2 mesh
    # the twist average of a quantity that is the same on symmetric points equals the full-mesh average
    full = cell.make_kpts([2, 2, 2])
    f = np.sum(np.cos(full @ cell.a.T), axis=1)
    g = np.sum(np.cos(kpts.kpts_ibz @ cell.a.T), axis=1)
    assert twist_average(g, np.zeros_like(g), weights)[0] == pytest.approx(f.mean(), abs=1e-12)


@pytest.mark.parametrize("kpts", [np.zeros((4, 2)), np.zeros((0, 3)), {"twists": []}, {"counts": [1, -1]}])
def test_twist_weights_reject_bad_input(kpts) -> None:
    with pytest.raises(AnalysisError, match="kpts"):
        twist_weights_from_kpts(kpts)


# --- time-step extrapolation ----------------------------------------------------------------------

TAUS = np.array([0.005, 0.01, 0.02, 0.04])


def test_exact_line_gives_exact_intercept() -> None:
    fit = extrapolate_timestep(TAUS, -1.17 + 0.5 * TAUS, [1e-3, 2e-3, 1e-3, 5e-4])
    assert fit.value == pytest.approx(-1.17, abs=1e-12)
    assert fit.coefficients == pytest.approx([-1.17, 0.5], abs=1e-10)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-16) and fit.dof == 2


def test_exact_quadratic_gives_exact_intercept() -> None:
    fit = extrapolate_timestep(TAUS, -2.0 + 0.3 * TAUS - 4.0 * TAUS**2, [1e-3] * 4, order=2)
    assert fit.value == pytest.approx(-2.0, abs=1e-12)
    assert fit.coefficients == pytest.approx([-2.0, 0.3, -4.0], abs=1e-8)
    assert fit.dof == 1 and fit.covariance.shape == (3, 3)


@pytest.mark.parametrize("order", [1, 2])
def test_matches_numpy_polyfit(order: int) -> None:
    rng = np.random.default_rng(order)
    taus = np.array([0.0025, 0.005, 0.01, 0.02, 0.04])
    errors = rng.uniform(2e-4, 1e-3, taus.size)
    energies = -1.17 + 0.2 * taus + errors * rng.normal(size=taus.size)
    fit = extrapolate_timestep(taus, energies, errors, order=order)
    coef, cov = np.polyfit(taus, energies, order, w=1 / errors, cov="unscaled")
    assert fit.coefficients == pytest.approx(coef[::-1], rel=1e-8, abs=1e-12)
    assert fit.covariance == pytest.approx(cov[::-1, ::-1], rel=1e-8, abs=1e-18)
    assert fit.error == pytest.approx(np.sqrt(cov[-1, -1]), rel=1e-8)
    residuals = (energies - np.polyval(coef, taus)) / errors
    assert fit.chi2 == pytest.approx(np.sum(residuals**2), rel=1e-8)


@pytest.mark.parametrize("order", [1, 2])
def test_pulls_are_standard_normal(order: int) -> None:
    rng = np.random.default_rng(10 + order)
    taus = np.array([0.005, 0.01, 0.02, 0.03, 0.04, 0.06])
    errors = np.array([2e-3, 1.5e-3, 1e-3, 1e-3, 8e-4, 6e-4])
    truth = -1.17 + 0.4 * taus + (3.0 * taus**2 if order == 2 else 0.0)
    pulls, chi2 = [], []
    for _ in range(2000):
        fit = extrapolate_timestep(taus, truth + errors * rng.normal(size=taus.size), errors, order=order)
        pulls.append((fit.value + 1.17) / fit.error)
        chi2.append(fit.chi2 / fit.dof)
    assert np.mean(pulls) == pytest.approx(0.0, abs=0.08)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.05)
    assert np.mean(chi2) == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize(
    ("taus", "energies", "errors", "order", "name"),
    [
        ([0.01, 0.02], [-1.0, -0.99], [1e-3, 1e-3], 1, "timesteps"),  # 2 points for 2 parameters
        ([0.01, 0.02, 0.04], [-1.0, -0.99, -0.97], [1e-3] * 3, 2, "timesteps"),
        ([0.01, 0.01, 0.01], [-1.0, -0.99, -0.97], [1e-3] * 3, 1, "timesteps"),  # one distinct τ
        ([0.01, 0.02, 0.04], [-1.0, -0.99], [1e-3] * 3, 1, "energies"),
        ([0.01, 0.02, 0.04], [-1.0, -0.99, -0.97], [1e-3, 0.0, 1e-3], 1, "errors"),
        ([0.01, 0.02, 0.04], [-1.0, -0.99, -0.97], [1e-3] * 3, 3, "order"),
        ([-0.01, 0.02, 0.04], [-1.0, -0.99, -0.97], [1e-3] * 3, 1, "timesteps"),
    ],
)
def test_extrapolation_rejects_bad_input(taus, energies, errors, order: int, name: str) -> None:
    with pytest.raises(AnalysisError, match=f"^{name}"):
        extrapolate_timestep(taus, energies, errors, order=order)
