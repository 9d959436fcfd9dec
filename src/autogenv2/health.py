"""Health checks on a QMC block series, and the one standard fix each allows.

A Reader reports what it sees in ``results["health"]``; the Manager applies the fix of each
finding once per element (recorded in its events) and fails the element if the finding
persists after the fix. Checks are pure numpy functions on the block series.

=================  ==============================================  ================================
check              finding                                          fix (once)
=================  ==============================================  ================================
equilibration      first quarter after warm-up differs from the     warm-up = half the blocks so far
                   second half by more than 4 combined σ            (the data is re-read)
population         DMC mean walker weight left [0.5, 2], or its     halve the timestep and redo the
                   block-to-block spread exceeds 0.5                element
spikes             a block more than 10 robust σ from the median    none: flagged in status only
=================  ==============================================  ================================
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import stats

DRIFT_SIGMAS = 4.0
SPIKE_SIGMAS = 10.0
WEIGHT_RANGE = (0.5, 2.0)
WEIGHT_SPREAD = 0.5

FIXES = {"equilibration": "more_warmup", "population": "smaller_timestep", "spikes": None}
"""What the Manager does the first time a check fails (None: record only)."""


def equilibration(energy: np.ndarray, warmup: int) -> dict[str, Any] | None:
    """Drift of the first quarter after warm-up against the second half (needs ≥ 16 blocks).

    The error of both parts is scaled from the second half's reblocked error: a drifting first
    quarter would otherwise inflate its own error bar and hide the drift.
    """
    data = np.asarray(energy, dtype=float)[warmup:]
    if data.size < 16:
        return None
    quarter, half = data[: data.size // 4], data[data.size // 2:]
    late = stats.estimate(half)
    combined = late.error * float(np.sqrt(1 + half.size / quarter.size))
    drift = float(quarter.mean() - late.mean)
    if combined > 0 and abs(drift) > DRIFT_SIGMAS * combined:
        return {"check": "equilibration", "detail": f"the first quarter after warm-up {warmup} differs from the "
                f"second half by {drift:+.2e} Ha ({abs(drift) / combined:.1f} σ)"}
    return None


def population(weights: np.ndarray | None, warmup: int) -> dict[str, Any] | None:
    """DMC mean walker weight per block far from 1, or wildly fluctuating."""
    if weights is None or np.asarray(weights).size <= warmup:
        return None
    w = np.asarray(weights, dtype=float)[warmup:]
    low, high = WEIGHT_RANGE
    if w.min() < low or w.max() > high or w.std() > WEIGHT_SPREAD:
        return {"check": "population", "detail": f"mean walker weight per block {w.min():.2f}…{w.max():.2f} "
                f"(spread {w.std():.2f}); the timestep is likely too large"}
    return None


def spikes(energy: np.ndarray, warmup: int) -> dict[str, Any] | None:
    """Blocks further than SPIKE_SIGMAS robust standard deviations (MAD) from the median."""
    data = np.asarray(energy, dtype=float)[warmup:]
    if data.size < 8:
        return None
    median = float(np.median(data))
    mad = float(np.median(np.abs(data - median))) * 1.4826
    if mad <= 0:
        return None
    outliers = np.flatnonzero(np.abs(data - median) > SPIKE_SIGMAS * mad)
    if outliers.size:
        return {"check": "spikes", "detail": f"{outliers.size} block(s) beyond {SPIKE_SIGMAS:g} robust σ, "
                f"first at block {int(outliers[0]) + warmup}"}
    return None


def check_series(energy: np.ndarray, weights: np.ndarray | None, warmup: int) -> list[dict[str, Any]]:
    """All findings for one series (empty when healthy).

    >>> rng = np.random.default_rng(0)
    >>> check_series(rng.normal(-1.17, 0.01, 200), None, 10)
    []
    """
    findings = [equilibration(energy, warmup), population(weights, warmup), spikes(energy, warmup)]
    return [f for f in findings if f is not None]
