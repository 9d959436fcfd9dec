"""Combining QMC results: twist averaging and DMC time-step extrapolation.

Pure numpy. Every error bar that goes in is a one-sigma standard error (e.g. from
:func:`autogenv2.stats.estimate`); every error bar that comes out is one too.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import AnalysisError

__all__ = [
    "AnalysisError", "Extrapolation", "extrapolate_timestep", "twist_average", "twist_weights_from_kpts",
]


def _vector(name: str, values: ArrayLike, n: int | None = None) -> np.ndarray:
    """``values`` as a finite 1-D float array (of length ``n`` when given)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise AnalysisError(f"{name}: expected a 1-D array, got shape {x.shape}")
    if n is not None and x.size != n:
        raise AnalysisError(f"{name}: expected {n} entries, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise AnalysisError(f"{name}: contains NaN or infinity")
    return x


def twist_average(energies: ArrayLike, errors: ArrayLike, weights: ArrayLike) -> tuple[float, float]:
    """Weighted twist average and its standard error.

    mean = Σ wᵢEᵢ / Σ wᵢ and error = √(Σ wᵢ²σᵢ²) / Σ wᵢ: twists are independent runs, so
    their variances add with the *squared* weights. (Averaging the σᵢ linearly, or
    dividing by √(number of twists), is wrong for unequal weights or errors.)

    >>> mean, err = twist_average([1.0, 2.0], [0.1, 0.2], [1.0, 3.0])
    >>> round(mean, 12), round(err, 12)   # √(1·0.01 + 9·0.04) / 4
    (1.75, 0.152069063257)
    """
    e = _vector("energies", energies)
    if e.size == 0:
        raise AnalysisError("energies: no twists given")
    s = _vector("errors", errors, e.size)
    w = _vector("weights", weights, e.size)
    if np.any(s < 0):
        raise AnalysisError(f"errors: negative error bar at twist {int(np.argmax(s < 0))}")
    if np.any(w < 0):
        raise AnalysisError(f"weights: negative weight at twist {int(np.argmax(w < 0))}")
    total = float(w.sum())
    if total <= 0:
        raise AnalysisError("weights: all weights are zero")
    return float(np.dot(w, e) / total), float(np.sqrt(np.dot(w**2, s**2)) / total)


def twist_weights_from_kpts(kpts: Any) -> np.ndarray:
    """Normalised weights (summing to 1) for the twists of a k-point set.

    ``kpts`` may be:

    - a PySCF ``KPoints`` object (``cell.make_kpts(mesh, space_group_symmetry=True)``): its
      ``weights_ibz``, in the order of ``kpts.kpts_ibz``;
    - a mapping with ``"counts"`` (PyQMC ``create_supercell_twists``): the number of primitive
      k-points folded onto each supercell twist, in the order of ``"twists"``;
    - an (nk, 3) array of k-points from a uniform mesh (``cell.make_kpts(mesh)``): equal weights.
      No symmetry reduction is attempted; pass reduced points with their weights as ``KPoints``.
    """
    if hasattr(kpts, "weights_ibz"):
        raw = _vector("kpts.weights_ibz", kpts.weights_ibz)
    elif isinstance(kpts, Mapping):
        if "counts" not in kpts:
            raise AnalysisError("kpts: mapping has no 'counts' (expected create_supercell_twists output)")
        raw = _vector("kpts['counts']", kpts["counts"])
    else:
        k = np.asarray(kpts, dtype=float)
        if k.ndim != 2 or k.shape[1] != 3 or k.shape[0] == 0:
            raise AnalysisError(f"kpts: expected an (nk, 3) array, got shape {k.shape}")
        raw = np.ones(k.shape[0])
    if raw.size == 0 or np.any(raw < 0) or raw.sum() <= 0:
        raise AnalysisError("kpts: weights must be non-negative with a positive sum")
    weights: np.ndarray = raw / raw.sum()
    return weights


@dataclass(frozen=True)
class Extrapolation:
    """Weighted least-squares fit E(τ) = Σₖ cₖ τᵏ and its zero-time-step limit.

    ``coefficients`` are in increasing order of power (c₀ first, unlike ``numpy.polyfit``);
    ``value``/``error`` are c₀ and √cov₀₀. ``chi2``/``dof`` judge the fit: χ²/dof ≫ 1 means
    the model (linear or quadratic) does not describe the data within their error bars.
    """

    value: float
    error: float
    coefficients: np.ndarray
    covariance: np.ndarray
    chi2: float
    dof: int


def extrapolate_timestep(
    timesteps: ArrayLike, energies: ArrayLike, errors: ArrayLike, order: int = 1
) -> Extrapolation:
    """Extrapolate DMC energies to zero time step by a fit weighted with 1/σ².

    The covariance is (AᵀWA)⁻¹ with A the Vandermonde matrix and W = diag(1/σ²); it is not
    rescaled by χ²/dof (same as ``numpy.polyfit(..., w=1/σ, cov="unscaled")``). At least
    ``order + 2`` points are required so that one degree of freedom is left to check the fit.

    >>> round(extrapolate_timestep([0.01, 0.02, 0.04], [-1.0, -0.99, -0.97], [1e-3] * 3).value, 10)
    -1.01
    """
    if order not in (1, 2):
        raise AnalysisError(f"order: must be 1 (linear) or 2 (quadratic), got {order!r}")
    tau = _vector("timesteps", timesteps)
    e = _vector("energies", energies, tau.size)
    s = _vector("errors", errors, tau.size)
    nparam = order + 1
    if tau.size < nparam + 1:
        raise AnalysisError(f"timesteps: an order-{order} fit needs {nparam + 1} points or more, "
                            f"got {tau.size}")
    if np.any(s <= 0):
        raise AnalysisError("errors: every error bar must be positive")
    if np.any(tau < 0):
        raise AnalysisError("timesteps: must be non-negative")
    if np.unique(tau).size < nparam:
        raise AnalysisError(f"timesteps: an order-{order} fit needs at least {nparam} distinct time steps")
    a = np.vander(tau, nparam, increasing=True)
    aw = a / s[:, None]                               # rows scaled by 1/σ: AᵀWA = awᵀaw
    covariance = np.linalg.inv(aw.T @ aw)
    coefficients = covariance @ (aw.T @ (e / s))
    chi2 = float(np.sum(((e - a @ coefficients) / s) ** 2))
    return Extrapolation(
        value=float(coefficients[0]),
        error=float(np.sqrt(covariance[0, 0])),
        coefficients=coefficients,
        covariance=covariance,
        chi2=chi2,
        dof=int(tau.size - nparam),
    )
