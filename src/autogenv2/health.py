"""Health checks on a QMC block series, and the standard fixes each allows.

A Reader reports what it sees in ``results["health"]``; the Manager applies the fixes of each
finding in turn (recorded in its events) and fails the element if the finding persists after the
last. Checks are pure numpy functions on the block series. Each fix is an object that says whether
it applies to a finding and Writer, and what it changes (a :class:`Remedy`): Writer option names come
from the Writer's declared capabilities (``sampling``, ``timestep_option``), the Reader's ``warmup`` is
named here, so the Manager composes fixes without knowing any option.

=================  ==============================================  ================================
check              finding                                          fixes (in turn)
=================  ==============================================  ================================
equilibration      first quarter after warm-up differs from the     1. sample as much again, warm-up
                   second half beyond the t_ν quantile of            kept; 2. warm-up += the flagged
                   DRIFT_FALSE_ALARM (false alarms ≤ 0.9 %           quarter (the data is re-read)
                   measured on stationary series)
population         DMC mean walker weight left [0.5, 2], or its     halve the timestep and redo the
                   block-to-block spread exceeds 0.5                element
spikes             a block more than 10 robust σ from the median    none: flagged in status only
=================  ==============================================  ================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from . import errorbar, stats

if TYPE_CHECKING:
    from .codes.base import Writer

DRIFT_FALSE_ALARM = 0.001
"""Two-sided probability that a stationary series is flagged (measured 0.0–0.9 %: calibration.py; at
0.002 the skewed 20-block series reached 1.02 % over 10,000 seeds)."""
SPIKE_SIGMAS = 10.0
WEIGHT_RANGE = (0.5, 2.0)
WEIGHT_SPREAD = 0.5

def equilibration(energy: np.ndarray, warmup: int) -> dict[str, Any] | None:
    """Drift of the first quarter after warm-up against the second half (needs ≥ 16 blocks).

    The error of both parts is scaled from the second half's error (a drifting first quarter would
    otherwise inflate its own error bar and hide the drift): its published error without the
    small-sample factor (reblocked if the whole series shows correlation), with ν degrees of freedom.
    Under no drift the ratio follows Student's t_ν, so the threshold is its two-sided
    DRIFT_FALSE_ALARM quantile, its dof reduced for heavy tails (kurtosis of all but the tested quarter).
    A fixed "4σ" fired on 0.5–3.1 % of stationary series of 20–180 blocks (3,000 seeds each, Gaussian
    and skewed), whose half has few blocks behind its error; this test on 0.0–0.47 %
    (benchmarks/calibration.py). Correlation is judged on the whole series (more power).
    """
    data = np.asarray(energy, dtype=float)[warmup:]
    if data.size < 16:
        return None
    quarter, half = data[: data.size // 4], data[data.size // 2:]
    late = errorbar.publish(half, assume_correlated=errorbar.blocks_correlated(data))
    raw = late.error / errorbar.small_sample_factor(late.dof)
    combined = raw * float(np.sqrt(1 + half.size / quarter.size))
    drift = float(quarter.mean() - late.mean)
    rest = data[quarter.size:]  # κ from all but the tested quarter (a transient there is no tail)
    dof = min(late.dof, errorbar.heavy_tailed_dof(rest, late.dof, late.dof + 1))
    threshold = errorbar.t_quantile(1 - DRIFT_FALSE_ALARM / 2, dof)
    if combined > 0 and abs(drift) > threshold * combined:
        return {"check": "equilibration", "detail": f"the first quarter after warm-up {warmup} differs from "
                f"the second half by {drift:+.2e} Ha ({abs(drift) / combined:.1f} σ, threshold "
                f"{threshold:.1f} σ with {dof:.0f} dof)"}
    return None


def warmup_after_drift(blocks: int, warmup: int) -> int:
    """The warm-up that drops the flagged first quarter (used once sampling more did not cure a drift)."""
    return warmup + max(blocks - warmup, 0) // 4


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
    median = stats.median(data)
    mad = stats.median(np.abs(data - median)) * 1.4826
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


@dataclass(frozen=True)
class Remedy:
    """What a fix changes, and how the element goes on.

    ``continue``: the run is incomplete; the next attempt continues it with the ``writer`` totals.
    ``reread``: read the same outputs again with the ``reader`` settings (kept from now on).
    ``redo``: archive the element's directory and run it again with the ``writer`` options.
    """

    how: Literal["continue", "reread", "redo"]
    what: str
    writer: dict[str, Any] = field(default_factory=dict)
    reader: dict[str, Any] = field(default_factory=dict)


class Fix(Protocol):
    """One standard answer to a health finding."""

    def applies(self, finding: dict[str, Any], writer: Writer) -> bool: ...

    def apply(self, finding: dict[str, Any], writer: Writer, results: dict[str, Any]) -> Remedy: ...


def _blocks_and_warmup(results: dict[str, Any]) -> tuple[int, int]:
    return int(results.get("blocks") or 0), int(results.get("warmup") or 0)


class SampleMore:
    """Sample as much again and keep every block (a cut biases a false alarm: see FIXES)."""

    def applies(self, finding: dict[str, Any], writer: Writer) -> bool:
        return type(writer).sampling_total() is not None

    def apply(self, finding: dict[str, Any], writer: Writer, results: dict[str, Any]) -> Remedy:
        key = type(writer).sampling_total()
        assert key is not None
        blocks, used = _blocks_and_warmup(results)
        total = blocks + max(blocks - used, 1)
        return Remedy("continue", f"sampling as much again (to {total} blocks), warm-up kept at {used}",
                      writer={key: total})


class MoreWarmup:
    """Drop the flagged first quarter: the Reader's ``warmup`` grows (:func:`warmup_after_drift`)."""

    option = "warmup"

    def applies(self, finding: dict[str, Any], writer: Writer) -> bool:
        return True

    def apply(self, finding: dict[str, Any], writer: Writer, results: dict[str, Any]) -> Remedy:
        warmup = warmup_after_drift(*_blocks_and_warmup(results))
        return Remedy("reread", f"warm-up raised to {warmup}", reader={self.option: warmup})


class SmallerTimestep:
    """Halve the Writer's time step and redo the element."""

    def applies(self, finding: dict[str, Any], writer: Writer) -> bool:
        key = type(writer).timestep_option
        return key is not None and isinstance(getattr(writer, key, None), (int, float))

    def apply(self, finding: dict[str, Any], writer: Writer, results: dict[str, Any]) -> Remedy:
        key = type(writer).timestep_option
        assert key is not None
        smaller = float(getattr(writer, key)) / 2
        return Remedy("redo", f"redoing with {key} {smaller:g}", writer={key: smaller})


FIXES: dict[str, tuple[Fix, ...]] = {"equilibration": (SampleMore(), MoreWarmup()),
                                     "population": (SmallerTimestep(),), "spikes": ()}
"""What the Manager does each time a check fails, in turn (the first fix from there on that applies
to the Writer); once they are used up the element fails (empty: record only). A drift on a stationary
run is a false alarm whose first quarter deviated one way, so its second half deviates the other way:
cutting to it moved the estimate (the old fix). The mean of the whole series is independent of that
contrast, so sampling as much again and keeping the warm-up moves nothing; only a drift that survives
twice the data has the flagged quarter cut. A Writer with no sampling total has its warm-up raised at
once; one with no time step has a population finding left as it is."""

