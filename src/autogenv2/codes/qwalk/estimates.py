"""Energies, error bars and convergence of QWalk runs: gosling's warm-up rule and our reblocking."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import errorbar, sampling, stats
from ...stats import finite_or_none
from . import logparse as lp

CONVERGENCE_SIGMAS = 2.0
DMC_WARMUP_AU = 10.0
"""Projection time (hartree⁻¹) a DMC drops from its start at least (never more than half its blocks).

QWalk's DMC starts from walkers of a short VMC and a trial energy from their local energies; on 177
H2 runs (τ = 0.02, 1 au a block) the first 10 blocks sat +0.7 mHa above the exact energy and the later
ones agreed with it, while gosling's rule cut 0 blocks on the median run (docs/benchmarks.md,
"QWalk DMC: the warm-up")."""


def gosling_warmup(energy: np.ndarray) -> int:
    """gosling's equilibration cut (FORMAT.md §7, ``Properties_final_average::blockReduce``).

    Only with more than 5 blocks: take the unweighted mean and population SD of the blocks from
    ``n // 5`` on; drop every block before the first one within one SD of that mean.

    >>> gosling_warmup(np.array([5.0, 3.0, 1.0, 1.1, 0.9, 1.0, 1.05, 0.95]))
    2
    """
    n = energy.size
    if n <= 5:
        return 0
    tail = energy[n // 5:]
    mean = tail.mean()
    sd = math.sqrt(float(((tail - mean) ** 2).mean()))
    close = np.flatnonzero(np.abs(energy - mean) < sd)
    return int(close[0]) if close.size else 0


def dmc_warmup(timestep: float | None, nstep: int | None, nblocks: int) -> int:
    """Blocks that cover :data:`DMC_WARMUP_AU` of projection time (QWalk's NSTEP defaults to
    round(1/τ)), at most half of ``nblocks``; 0 without a time step.

    >>> dmc_warmup(0.02, None, 60), dmc_warmup(0.01, 50, 60), dmc_warmup(0.02, None, 12)
    (10, 20, 6)
    """
    if timestep is None or not timestep > 0:
        return 0
    steps = nstep if nstep and nstep > 0 else max(round(1 / timestep), 1)
    return min(math.ceil(DMC_WARMUP_AU / (timestep * steps) - 1e-9), nblocks // 2)


def summarize(series: lp.Series | None, warmup: int | None = None) -> dict[str, Any]:
    """Energy, error, variance of one label's merged blocks; ``warmup=None`` uses gosling's rule."""
    return sample(series, warmup)[0]


def sample(series: lp.Series | None, warmup: int | None = None, confidence: float = sampling.CONFIDENCE,
           least: int = 0) -> tuple[dict[str, Any], sampling.Published | None]:
    """The results of one label's merged blocks and the published estimate the sampling judge plans with;
    ``warmup=None``: gosling's cut, at least ``least`` blocks (:func:`dmc_warmup` for a DMC)."""
    if series is None or series.nblocks == 0:
        return {"energy": None, "error": None, "variance": None, "blocks": 0, "warmup": 0}, None
    n = series.nblocks
    cut = max(gosling_warmup(series.energy), min(least, n - 1)) if warmup is None else min(warmup, n - 1)
    weights = series.totweight if np.all(series.totweight > 0) else None
    relative = None if weights is None else weights / stats.median(weights)  # mean weight per walker ~ 1
    published = sampling.publish(series.energy, weights, cut, walker_weight=relative,
                                 sample_variance=series.energyvar)  # tells heavy tails (errorbar.tail_floor)
    res: dict[str, Any] = {"blocks": n, "warmup": cut}
    if published is not None:
        res.update(published.results(confidence))
    with np.errstate(all="ignore"):
        var = None if series.energyvar is None else stats.estimate(series.energyvar, weights, cut).mean
    res["variance"] = finite_or_none(var)
    return res, published


def _changed_within_errors(a: float, da: float, b: float, db: float) -> bool:
    return abs(b - a) <= CONVERGENCE_SIGMAS * math.hypot(da, db)


def linear_converged(steps: list[tuple[float, float]], halted: bool) -> bool:
    """LINEAR: the last two iterations' energies agree within their error bars and the recent trace
    does not scatter beyond them (:func:`errorbar.trace_convergence`), or QWalk halted."""
    if halted:
        return True
    if len(steps) < 2:
        return False
    energy, error = (np.array(column, dtype=float) for column in zip(*steps, strict=True))
    return errorbar.trace_convergence(energy, error, 2, CONVERGENCE_SIGMAS).converged


def optimize_converged(sections: list[lp.MethodReport]) -> bool:
    """OPTIMIZE: final objective (variance about EREF) of the last two sections agree.

    Each section draws a fresh sample of NCONFIG walkers, so its variance carries an error of
    about ``d * sqrt(2 / (nconfig - 1))``; with one section its last two iterations are compared.
    """
    def point(values: list[float], nconfig: int | None) -> tuple[float, float]:
        return values[-1], values[-1] * math.sqrt(2.0 / max((nconfig or 2048) - 1, 1))

    done = [s for s in sections if s.dispersions]
    if len(done) >= 2:
        return _changed_within_errors(*point(done[-2].dispersions, done[-2].nconfig),
                                      *point(done[-1].dispersions, done[-1].nconfig))
    if done and len(done[0].dispersions) >= 2:
        d = done[0].dispersions
        return _changed_within_errors(*point(d[:-1], done[0].nconfig), *point(d, done[0].nconfig))
    return False
