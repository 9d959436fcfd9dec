"""The error bar a block series publishes: reblocked only where the blocks show correlation, never
below the plain standard error without that evidence, with a small-sample margin, its degrees of
freedom, its 95 % bound and whether it can be trusted.

:func:`stats.estimate` is Flyvbjerg–Petersen reblocking with Lee's plateau (pyblock's choice, to
1e-15). On short series that error is over-confident for two measured reasons
(benchmarks/calibration.py, docs/benchmarks.md "Calibration"):

- *selection*: Lee's criterion B³ > 2N(σ_B/σ₀)⁴ is met more easily by a level whose error came out
  low, so the chosen error is biased low; on uncorrelated blocks it can be far below the level-0
  standard error, which has the most degrees of freedom of all levels. A reblocked level is used only
  with evidence that the blocks are positively correlated (:func:`correlated`), and never below the
  level-0 error; otherwise the level-0 error, with N − 1 dof, is the error bar (anticorrelated
  blocks, lag-1 down to −0.33 on recorded QWalk runs, make it conservative, never over-confident);
- *few blocks*: an error from ν + 1 blocks is a χ-distributed estimate, so (E − E_true)/σ follows
  Student's t with ν degrees of freedom, not a normal: ±2σ of 5 blocks covers 88 %, not 95 %. The
  published σ is multiplied by :func:`small_sample_factor` and the exact 95 % half-width is
  published beside it.

``reliable`` is False (with a reason) when the reblocking found no plateau or fewer than
:data:`MIN_DOF` degrees of freedom are behind the error bar: the number is published, marked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from . import stats

Z_975 = 1.959963984540054
"""Two-sided 95 % normal quantile."""
Z_90 = 1.2815515655446004
"""One-sided 90 % (two-sided 80 %) normal quantile."""
EVIDENCE = 0.05
"""Significance of each test for correlated blocks; without evidence the plain standard error (N − 1
dof) is published, since any reblocked level of the same blocks has fewer dof and is selected low."""
MIN_DOF = 10
"""Below this many degrees of freedom the error bar is itself uncertain by more than ±22 %."""


def t_quantile(probability: float, dof: float) -> float:
    """Student's t quantile (``inf`` dof: the normal one); scipy is imported only when needed."""
    if not math.isfinite(dof) or dof > 1e6:
        return stats.normal_quantile(probability)
    if dof >= 1000:  # Cornish-Fisher to 1/dof⁴: within 3e-13 (relative) of stdtrit there, without scipy
        return _t_expansion(probability, dof)
    from scipy.special import stdtrit
    return float(stdtrit(max(dof, 1.0), probability))


def _t_expansion(probability: float, dof: float) -> float:
    """Student's t quantile for many dof: z + g₁/ν + … + g₄/ν⁴ (Abramowitz & Stegun 26.7.5)."""
    z = stats.normal_quantile(probability)
    s = z * z
    terms = (z * (s + 1) / 4, z * ((5 * s + 16) * s + 3) / 96, z * (((3 * s + 19) * s + 17) * s - 15) / 384,
             z * ((((79 * s + 776) * s + 1482) * s - 1920) * s - 945) / 92160)
    return z + sum(g / dof ** (k + 1) for k, g in enumerate(terms))


def small_sample_factor(dof: float) -> float:
    """t_ν(0.9)/z(0.9): the σ multiplier that makes ±1.28σ an 80 % interval with ν dof (≥ 1).

    One factor cannot make both ±1σ (68 %) and ±2σ (95 %) exact under Student's t; the 80 % interval
    between them keeps both close for ν ≥ 4 (ν = 6: 70 % and 93 %), while the
    exact 95 % half-width t_ν(0.975)·σ_raw is published beside it (``error_95``).

    >>> round(small_sample_factor(6), 3), round(small_sample_factor(1e9), 3)
    (1.123, 1.0)
    """
    return t_quantile(0.9, dof) / Z_90


@dataclass(frozen=True)
class Published:
    """The error bar a Reader publishes, and what it rests on."""

    mean: float
    error: float          # published σ: Lee's level if correlated (≥ level 0), else level 0; × factor
    reblocked: float      # Flyvbjerg–Petersen at Lee's level (pyblock's)
    naive: float          # level-0 standard error of the blocks
    dof: float            # degrees of freedom behind ``error``
    bound95: float        # half-width of the two-sided 95 % interval: t_ν(0.975) × the unscaled error
    reliable: bool
    reason: str           # why not reliable ('' when it is)
    estimate: stats.Estimate  # the reblocking it came from, with ``error`` replaced by the published one

    def results(self) -> dict[str, object]:
        """The fields a Reader adds to its results (JSON-safe)."""
        finite = stats.finite_or_none
        return {"error_reblocked": finite(self.reblocked), "error_naive": finite(self.naive),
                "error_dof": finite(self.dof), "error_95": finite(self.bound95),
                "reliable": self.reliable, "unreliable_reason": self.reason, "error_method": "blocks"}


def from_precision(prec: stats.Precision) -> dict[str, object]:
    """The same fields for an error from the windowed autocorrelation (walker groups): its dof follow
    from its stated relative noise, 1/(2·rel²)."""
    dof = 1.0 / (2.0 * prec.relative**2) if prec.relative > 0 else math.inf
    reasons = [] if prec.reliable else ["the autocorrelation window did not close: the run is too short"]
    if dof < MIN_DOF:
        reasons.append(f"only {dof:.0f} degrees of freedom behind the error bar (fewer than {MIN_DOF})")
    bound = prec.error * t_quantile(0.975, dof)
    return {"error_dof": stats.finite_or_none(dof), "error_95": stats.finite_or_none(bound),
            "reliable": not reasons, "unreliable_reason": "; ".join(reasons)}


def publish(data: ArrayLike, weights: ArrayLike | None = None, warmup: int = 0,
            assume_correlated: bool = False, sample_variance: ArrayLike | None = None) -> Published:
    """The published error bar of ``data[warmup:]`` (weighted for DMC), see the module docstring.

    ``assume_correlated``: evidence found elsewhere (e.g. on the whole series a part of it came from).
    ``sample_variance``: each block's variance of its samples (QWalk's ``total_energyvar``), from which
    :func:`tail_floor` tells heavy-tailed samples, whose few blocks estimate their kurtosis far too low.
    """
    est, levels = stats.estimate_levels(data, weights, warmup)
    if est.n < 2 or not math.isfinite(est.error):
        return Published(est.mean, float("nan"), est.error, float("nan"), 0.0, float("nan"), False,
                         f"{est.n} block(s) after warm-up: no error bar", est)
    x = np.asarray(data, dtype=float).ravel()[max(warmup, 0):]
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()[max(warmup, 0):]
    tails = (None if sample_variance is None
             else np.asarray(sample_variance, dtype=float).ravel()[max(warmup, 0):])
    floor = 0.0 if tails is None else tail_floor(x, tails)
    naive = levels[0]
    chosen = next((lv for lv in levels if lv.size == est.block_size), naive)
    if assume_correlated or correlated(x, naive, chosen):
        level, dof = (chosen if chosen.error >= naive.error else naive), float(chosen.nblocks - 1)
        dof = heavy_tailed_dof(_level_blocks(x, chosen.size), dof, floor=floor / chosen.size)
    else:
        level, dof = naive, heavy_tailed_dof(x, _dof(naive, w), floor=floor)
    error = level.error * small_sample_factor(dof)
    bound = level.error * t_quantile(0.975, dof)
    reasons = []
    if not est.reliable and level is not naive:
        reasons.append("no reblocking plateau: the blocks are correlated over most of the run")
    if dof < MIN_DOF:
        reasons.append(f"only {dof:.0f} degrees of freedom behind the error bar (fewer than {MIN_DOF})")
    return Published(est.mean, error, est.error, naive.error, dof, bound, not reasons,
                     "; ".join(reasons), replace(est, error=error))


def correlated(x: np.ndarray, naive: stats.Level, chosen: stats.Level, alpha: float = EVIDENCE) -> bool:
    """Evidence (one-sided, level ``alpha`` each) that the blocks are positively correlated: their lag-1
    autocorrelation, the sum of their first √N autocorrelations (a slow mode), or the reblocked variance
    against the plain one (an F test on their dof)."""
    n = x.size
    if n < 4 or naive.error <= 0:
        return chosen.error > naive.error
    y = x - x.mean()
    if y @ y <= 0:
        return False
    lags = max(1, math.isqrt(n))
    if n > 4096:  # the same sums by FFT: O(n log n) instead of O(n^1.5)
        rho = _fft_correlations(x, y, lags)
    else:
        rho = np.array([y[k:] @ y[:-k] for k in range(1, lags + 1)]) / (y @ y) + 1.0 / n  # E = −1/N under H0
    z = t_quantile(1 - alpha, math.inf)
    if rho[0] > z / math.sqrt(n) or rho.sum() > z * math.sqrt(lags / n):
        return True
    if chosen.nblocks >= n or chosen.error <= naive.error:
        return False
    from scipy.special import fdtri
    return bool((chosen.error / naive.error) ** 2 > fdtri(chosen.nblocks - 1, n - 1, 1 - alpha))


_LAST_FFT: dict[bytes, np.ndarray] = {}
"""The last series :func:`_fft_correlations` transformed, and its answer: a Reader tests the same series
twice (its published error bar, then the drift check of :mod:`.health`), and the FFTs of 100,000 blocks
are the larger part of a read."""


def _fft_correlations(x: np.ndarray, y: np.ndarray, lags: int) -> np.ndarray:
    """The first ``lags`` autocorrelations of ``x`` (``y``: x centred) plus 1/n, by FFT; read-only."""
    key = x.tobytes()
    known = _LAST_FFT.get(key)
    if known is None or known.size != lags:
        n = x.size
        known = stats._autocovariance(y[:, None])[1:lags + 1, 0] * n / (y @ y) + 1.0 / n
        known.flags.writeable = False
        _LAST_FFT.clear()
        _LAST_FFT[key] = known
    return known


def blocks_correlated(data: ArrayLike) -> bool:
    """:func:`correlated` on a plain series (its level 0 against Lee's level)."""
    x = np.asarray(data, dtype=float).ravel()
    if x.size < 4:
        return False
    levels = stats.reblock(x)
    chosen, _ = stats.optimal_level(levels, x.size)
    return correlated(x, levels[0], chosen)


def heavy_tailed_dof(blocks: np.ndarray, dof: float, m: float | None = None, floor: float = 0.0) -> float:
    """The dof of a variance estimated from m heavy-tailed blocks: Var(s²)/σ⁴ = 2/ν + κ/m (κ the excess
    kurtosis, from the sample ``blocks``, at least ``floor`` and 0), so ν_eff = 2/(2/ν + κ/m). ``m``
    defaults to the number of ``blocks`` (give it when κ comes from more blocks than the variance did).

    Local energies are heavy-tailed: real QWalk VMC blocks of H2 had skewness −2.3 and excess kurtosis
    12, and 20 of them, read with N − 1 = 19 dof, covered 86 % at 2σ (150 runs; docs/benchmarks.md).
    """
    if blocks.size < 4 or dof <= 0:
        return dof
    m = float(blocks.size if m is None else m)
    y = blocks - blocks.mean()
    var = float(np.mean(y * y))
    if var <= 0:
        return dof
    kurtosis = max(float(np.mean(y**4)) / var**2 - 3.0, floor, 0.0)
    return 2.0 / (2.0 / dof + kurtosis / m)


SAMPLE_KURTOSIS = 4000.0
"""The least excess kurtosis taken for heavy-tailed samples (:func:`tail_floor`), in samples: a block of
n_eff effective samples gets at least SAMPLE_KURTOSIS/n_eff."""
KURTOSIS_FLOOR = 10.0
"""... but no more than this for the block means (the most measured: real QWalk VMC blocks, 12)."""
TAIL_EVIDENCE = 0.1
"""Samples are heavy-tailed when their blocks' variances scatter (in relative variance) by this much more
than Gaussian samples' would, and by 3 of that value's standard errors."""


def tail_floor(blocks: np.ndarray, sample_variance: np.ndarray) -> float:
    """The least excess kurtosis :func:`heavy_tailed_dof` takes for the block means: 0 for blocks of
    Gaussian-like samples, min(SAMPLE_KURTOSIS/n_eff, KURTOSIS_FLOOR) for heavy-tailed ones.

    Local energies near an unmet electron–nuclear cusp have a finite variance but (nearly) no fourth
    moment, and so have their block means: the kurtosis a run estimates grows with its length (real
    QWalk VMC of H2, blocks of 1,000 samples: median 0.6 from 20 blocks, 2.6 from 60, 12 from 3,000, 164
    pooled over 16,500 blocks of 300 runs), and 20 blocks published with their own covered 87–90 % at 2σ.
    The sign is in each block's sample variance V: Gaussian samples give Var(V)/V̄² ≈ 2/n_eff, with
    n_eff = V̄/Var(block mean) the effective samples of a block; heavy tails far more (0.4–1.9 on 20 of
    those blocks, against 2/n_eff = 0.003). The block kurtosis of samples with sample kurtosis K is
    K/n_eff: the floor is set in samples (measured, docs/benchmarks.md "Calibration"): QWalk VMC blocks of
    H2 (n_eff ≈ 600) get 6–7, its DMC blocks (6,400 samples, n_eff ≈ 4,500) 0.9.
    """
    m = min(blocks.size, sample_variance.size)
    v, x = sample_variance[:m], blocks[:m]
    if m < 4 or not (np.all(np.isfinite(v)) and np.all(np.isfinite(x))) or v.mean() <= 0:
        return 0.0
    relative = float(v.var(ddof=1) / v.mean() ** 2)
    gaussian = 2.0 * float(x.var(ddof=1)) / float(v.mean())  # 2/n_eff
    if relative - gaussian <= TAIL_EVIDENCE + 3.0 * math.sqrt(2.0 / (m - 1)) * gaussian:
        return 0.0
    return min(KURTOSIS_FLOOR, SAMPLE_KURTOSIS * gaussian / 2.0)


def _level_blocks(x: np.ndarray, size: int) -> np.ndarray:
    """The (unweighted) block means of ``x`` at a reblocking level of ``size`` samples per block."""
    m = x.size // size
    return np.asarray(x[: m * size].reshape(m, size).mean(axis=1))


def _dof(level: stats.Level, weights: np.ndarray | None) -> float:
    """Degrees of freedom of a level's error: its blocks − 1 (Kish's effective count when weighted)."""
    if weights is None or level.size > 1:
        return float(level.nblocks - 1)
    n_eff = float(weights.sum() ** 2 / np.sum(weights * weights))
    return max(n_eff - 1.0, 1.0)


# --- optimization traces: honest per-iteration errors, and convergence a swinging trace cannot pass ------

TRACE_ALPHA = 0.01
"""A flat trace fails the scatter test at a given look with this probability (χ² on stated errors)."""


@dataclass(frozen=True)
class Trace:
    """Convergence of an optimization's energy trace, and how far its stated errors can be trusted."""

    converged: bool
    change: float      # max − min of the last ``window`` energies
    scatter: float     # Birge ratio √(χ²/dof) of the recent trace about its mean, in stated errors
    error: float       # the last energy's error: stated, × scatter where that is significant
    reason: str        # why not converged ('' when it is)


def trace_convergence(energy: ArrayLike, error: ArrayLike, window: int, sigmas: float,
                      alpha: float = TRACE_ALPHA) -> Trace:
    """Flat when the last ``window`` energies lie within ``sigmas``·√2·rms(error) of each other *and*
    the recent trace (its last half, at least ``window`` iterations) scatters no more than its stated
    errors allow (χ² about the weighted mean, p ≥ ``alpha``; errors scaled by ``sigmas``/2, so the
    default 2 takes them as stated and a larger ``sigmas`` tolerates more, as for the range).

    The first test alone looks at a few iterations, so a trace swinging by ±10σ passed it whenever
    three consecutive iterations fell close by chance (He: −2.9228 ± 0.0040, 4.8σ below exact, on a
    trace swinging ±0.04 Ha). The scatter also corrects the published error: where it is significant
    (p < EVIDENCE) the last energy's error is its stated one times the scatter, since PyQMC's
    per-iteration error ignores that noise.
    """
    e = np.asarray(energy, dtype=float).ravel()
    s = np.asarray(error, dtype=float).ravel()[: e.size]
    e = e[: s.size]
    if e.size < max(window, 2):
        return Trace(False, float("nan"), float("nan"), float(s[-1]) if s.size else float("nan"),
                     f"{e.size} iterations, fewer than the {window} compared")
    span = max(window, e.size // 2)
    recent, err = e[-span:], s[-span:]
    if not (np.all(np.isfinite(recent)) and np.all(np.isfinite(err)) and np.all(err > 0)):
        nan = float("nan")
        return Trace(False, nan, nan, nan, "energies or errors are not finite and positive")
    weights = 1.0 / err**2
    mean = float(np.sum(weights * recent) / weights.sum())
    chi2 = float(np.sum(((recent - mean) / err) ** 2))
    tolerated = chi2 / (sigmas / 2.0) ** 2  # sigmas = 2 (the default) tests the stated errors as they are
    from scipy.special import chdtrc
    p, tolerated_p = float(chdtrc(span - 1, chi2)), float(chdtrc(span - 1, tolerated))
    scatter = math.sqrt(chi2 / (span - 1))
    last, last_err = e[-window:], s[-window:]
    change = float(last.max() - last.min())
    allowed = sigmas * float(np.sqrt(np.mean(last_err**2)) * np.sqrt(2.0))
    reasons = []
    if change > allowed:
        reasons.append(f"the last {window} energies still change by {change:.2e} Ha (> {allowed:.2e})")
    if tolerated_p < alpha:
        reasons.append(f"the last {span} energies scatter {scatter:.1f}× their error bars")
    inflate = scatter if p < EVIDENCE else 1.0  # only a scatter the stated errors cannot explain
    return Trace(not reasons, change, scatter, float(s[-1]) * max(1.0, inflate), "; ".join(reasons))
