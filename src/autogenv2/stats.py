"""Reblocking (Flyvbjerg–Petersen) with Lee et al.'s choice of block size; weighted for DMC.

Serial correlation makes the naive standard error of QMC block averages too small. Averaging
neighbours pairwise (one "reblock") and recomputing the error until it plateaus gives the true
error; the plateau is picked with the criterion B³ > 2·N·(σ_B/σ_0)⁴ of Lee et al.,
PRE 83, 066706 (2011), Eq. 14 (B = samples per block, N = samples).
Cross-checked against pyblock in tests/test_stats.py.

Deciding *how much more* to sample needs an error bar whose own noise is small and known: the
windowed autocorrelation sum (Sokal's automatic window, :func:`precision`) has about half the
scatter of the reblocked error on the same data and a closed-form uncertainty, so
:func:`samples_to_target` plans with it and stops only when its one-sided 95 % upper bound (and
the published reblocked error) are within the target (benchmarks/sampling_efficiency.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

MIN_BLOCKS = 4
"""A reblocking level with fewer blocks than this is never chosen."""


@dataclass(frozen=True)
class Level:
    """Statistics at one reblocking level (``size`` = original samples per block)."""

    size: int
    nblocks: int
    mean: float
    error: float
    error_error: float


@dataclass(frozen=True)
class Estimate:
    """Mean and error bar of a correlated series, with how they were obtained."""

    mean: float
    error: float
    n: int               # samples used (after warm-up)
    block_size: int      # samples per block at the chosen level
    reliable: bool       # False when no level met the plateau criterion (collect more data)
    variance: float      # sample variance of the series (weighted if weights were given)

    @property
    def autocorrelation_time(self) -> float:
        """τ ≈ (σ_true/σ_naive)², in samples; 1 for uncorrelated data."""
        naive = np.sqrt(self.variance / self.n) if self.n > 1 else np.nan
        return float((self.error / naive) ** 2) if naive and naive > 0 else float("nan")


def reblock(data: ArrayLike, weights: ArrayLike | None = None) -> list[Level]:
    """All reblocking levels of a 1-D series (pairwise averaging; an odd last sample is dropped)."""
    x = np.asarray(data, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != x.shape:
        raise ValueError(f"weights have {w.size} entries, data {x.size}")
    levels: list[Level] = []
    size = 1
    while x.size >= 2:
        wn = w / w.sum()
        mean = float(np.sum(wn * x))
        n_eff = 1.0 / float(np.sum(wn * wn))
        variance = n_eff / (n_eff - 1.0) * float(np.sum(wn * (x - mean) ** 2))
        error = np.sqrt(variance / n_eff)
        levels.append(Level(size, x.size, mean, float(error), float(error / np.sqrt(2 * (n_eff - 1)))))
        half = x.size // 2 * 2
        pair_w = w[:half:2] + w[1:half:2]
        x = (x[:half:2] * w[:half:2] + x[1:half:2] * w[1:half:2]) / pair_w
        w, size = pair_w, size * 2
    return levels


def optimal_level(levels: list[Level], n: int) -> tuple[Level, bool]:
    """The smallest level meeting Lee's criterion, or the most pessimistic one if none does."""
    if not levels:
        raise ValueError("no data to reblock")
    first = levels[0].error
    usable = [lv for lv in levels if lv.nblocks >= MIN_BLOCKS] or levels[:1]
    for level in usable:
        ratio = level.error / first if first > 0 else 1.0
        if level.size ** 3 > 2 * n * ratio ** 4:
            return level, True
    return max(usable, key=lambda lv: lv.error), False


def estimate(data: ArrayLike, weights: ArrayLike | None = None, warmup: int = 0) -> Estimate:
    """Mean and reblocked error of ``data[warmup:]`` (weighted when ``weights`` is given).

    >>> e = estimate([1.0, 2.0, 3.0, 4.0])
    >>> round(e.mean, 6), e.n
    (2.5, 4)
    """
    return estimate_levels(data, weights, warmup)[0]


def estimate_levels(data: ArrayLike, weights: ArrayLike | None = None,
                    warmup: int = 0) -> tuple[Estimate, list[Level]]:
    """:func:`estimate` and the reblocking levels it chose from (none for a single sample)."""
    x = np.asarray(data, dtype=float).ravel()[max(warmup, 0):]
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()[max(warmup, 0):]
    if x.size == 0:
        raise ValueError(f"no samples left after removing {warmup} warm-up samples")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if not np.all(np.isfinite(x)) or (w is not None and not np.all(np.isfinite(w))):
        raise ValueError("data or weights contain NaN or infinity")
    if w is not None and (np.any(w < 0) or not np.any(w > 0)):
        raise ValueError("weights must be >= 0 with at least one > 0")
    if x.size == 1:
        return Estimate(float(x[0]), float("nan"), 1, 1, False, float("nan")), []
    levels = reblock(x, w)
    level, reliable = optimal_level(levels, x.size)
    variance = levels[0].error ** 2 * x.size if w is None else _weighted_variance(x, w)
    return Estimate(levels[0].mean, level.error, int(x.size), level.size, reliable, float(variance)), levels


def _weighted_variance(x: np.ndarray, w: np.ndarray) -> float:
    """Bessel-corrected with the effective sample size, like the unweighted N-1 form."""
    wn = w / w.sum()
    mean = np.sum(wn * x)
    n_eff = 1.0 / float(np.sum(wn * wn))
    return float(n_eff / (n_eff - 1.0) * np.sum(wn * (x - mean) ** 2)) if n_eff > 1 else float("nan")


def blocks_needed(error: float, target: float, n: int, safety: float = 1.1) -> int:
    """Samples to add so that an error of ``error`` from ``n`` samples falls to ``target``.

    σ ∝ 1/√N gives N_total = N·(σ/target)²; ``safety`` covers the noise of σ itself.

    >>> blocks_needed(0.002, 0.001, 100, safety=1.0)
    300
    """
    if not (np.isfinite(error) and np.isfinite(target) and target > 0 and safety >= 1):
        raise ValueError(f"blocks_needed: need finite error, target > 0 and safety >= 1 "
                         f"(got {error}, {target}, {safety})")
    if error <= target:
        return 0
    return max(0, int(np.ceil(n * ((error / target) ** 2 * safety - 1))))


def median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, computed as numpy does (NaN if any is NaN), without the import of
    ``numpy.ma`` that numpy's NaN check makes (10-25 ms of ``autogenv2 inspect``).

    >>> median(np.array([3.0, 1.0, 2.0])), median(np.array([4.0, 1.0, 3.0, 2.0]))
    (2.0, 2.5)
    """
    half = values.size // 2
    if values.size == 0 or np.isnan(values).any():
        return float("nan")
    if values.size % 2:
        return float(np.partition(values, half)[half])
    return float(np.mean(np.partition(values, [half - 1, half])[half - 1:half + 1]))


def finite_or_none(value: float | None) -> float | None:
    """JSON (allow_nan=False) has no NaN/inf: those become None."""
    return float(value) if value is not None and math.isfinite(value) else None


# --- planning: how many samples reach a target error ------------------------------------------

Z_95 = 1.6448536269514722
"""One-sided 95 % normal quantile: the margin put on a noisy error bar before trusting it."""


NORMAL_QUANTILES = {0.9: 1.2815515655446008, 0.95: 1.6448536269514715, 0.975: 1.9599639845400536,
                    0.9995: 3.2905267314919255}
"""``statistics.NormalDist().inv_cdf(p)`` of the probabilities every read uses, exactly (tests/test_stats.py):
``statistics`` imports fractions, decimal and random, 5-9 ms that ``autogenv2 inspect`` need not pay."""


def normal_quantile(probability: float) -> float:
    """The standard normal quantile of ``probability`` (``statistics.NormalDist().inv_cdf``)."""
    known = NORMAL_QUANTILES.get(probability)
    if known is not None:
        return known
    from statistics import NormalDist

    return NormalDist().inv_cdf(probability)


def confidence_z(confidence: float) -> float:
    """One-sided normal quantile of ``confidence`` (0.95 → 1.645; 0.5 → 0: trust the estimate as is)."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"target_confidence must be in [0.5, 1), got {confidence}")
    return normal_quantile(confidence)


WINDOW_C = 5.0
"""Sokal's window constant: sum the autocorrelation up to the first lag M ≥ c·τ(M)."""
WALKER_WINDOW_C = 10.0
"""... for an autocovariance pooled over walker groups: √G times less noisy, it can afford a window twice
as long (√2 more noise) to take in slow modes (benchmarks/error_estimators.py: on a fast + slow AR(1)
mixture, 32 groups at neff 391, c = 5 is 5.7 % low with its 95 % bound covering 11 %; c = 10 is 1.1 %
low and covers 89 %)."""
PILOT_NOISE = 0.08
"""An error bar noisier than this (relative) plans short of its estimate, so the next look decides."""
PILOT_SHORT = 1.0
"""... by this many of its relative standard deviations."""
MIN_GROWTH = 0.1
"""Each continuation adds at least this fraction: every extra look is a chance to stop on a low fluke."""
NOISY_GROWTH = 4.0
"""... and, planned from an error noisier than PILOT_NOISE, at most this factor: a pilot's high fluke
would otherwise commit the run to far more than it needs (docs/benchmarks.md: run/need 1.33–1.38 →
1.30 at neff 1,000, p95 1.66–1.87 → 1.57–1.60, for about 0.8 more runs)."""


@dataclass(frozen=True)
class Precision:
    """Error of the mean from the windowed autocorrelation sum, and how noisy that error is."""

    error: float
    tau: float          # integrated autocorrelation time, in samples
    window: int         # lags summed
    relative: float     # relative standard deviation of ``error``: √((2M+1)/(2N)) (Sokal); see
    #                     precision_walkers
    reliable: bool      # the window reached c·τ before the series ran out
    n: int

    def upper(self, z: float = Z_95) -> float:
        """One-sided upper confidence bound of the error (z = 1.645: 95 %)."""
        return self.error * (1.0 + z * self.relative)


def precision(data: ArrayLike, weights: ArrayLike | None = None, warmup: int = 0) -> Precision:
    """Windowed-autocorrelation error of the (weighted) mean of ``data[warmup:]``.

    A weighted mean is linearised: its error is that of the mean of yᵢ = (wᵢ/w̄)(xᵢ − x̄_w).
    """
    x = np.asarray(data, dtype=float).ravel()[max(warmup, 0):]
    n = x.size
    if n < 4:
        return Precision(float("nan"), float("nan"), 0, float("inf"), False, int(n))
    if weights is None:
        y = x - x.mean()
    else:
        w = np.asarray(weights, dtype=float).ravel()[max(warmup, 0):]
        y = w / w.mean() * (x - np.sum(w * x) / w.sum())
    return _windowed(_autocovariance(y[:, None]), n)


def precision_walkers(groups: ArrayLike, sizes: ArrayLike | None = None, warmup: int = 0,
                      populations: bool = False) -> Precision:
    """Windowed error of the mean over all walkers, from the block means of independent walker groups.

    ``groups`` is (blocks, G): column g holds the block averages of ``sizes[g]`` walkers (default
    equal sizes). In VMC the walkers are independent Markov chains with one autocorrelation function,
    so pooling it over the G columns knows the error about √G times better than the one series of
    their average does (relative noise √((2M+1)/(2·N·G)) for Gaussian data). Local energies are
    heavy-tailed, so the noise stated is the larger of that and the scatter of the G groups' own
    windowed sums. One DMC population couples its walkers by branching; ``populations``: the groups are
    DMC populations each branched on its own, independent chains whose energy keeps a memory longer
    than a run's window finds (docs/benchmarks.md "PyQMC DMC: populations"), so the error is always
    the scatter of their run means (:func:`between_groups_error`), and only that: it is unbiased, and a
    maximum with the window's would widen it (8 populations of 60 blocks: std/σ 0.86 instead of 0.94).
    """
    x = np.asarray(groups, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"walker groups must be a (blocks, groups) array, got shape {x.shape}")
    x = x[max(warmup, 0):]
    n, ngroups = x.shape
    size = np.ones(ngroups) if sizes is None else np.asarray(sizes, dtype=float).ravel()
    if size.shape != (ngroups,) or np.any(size <= 0):
        raise ValueError(f"walker group sizes must be {ngroups} positive numbers, got {size.tolist()}")
    if n < 4 or ngroups == 0:
        return Precision(float("nan"), float("nan"), 0, float("inf"), False, int(n))
    # scaled so every column has the per-walker variance; the mean over walkers has it ÷ Σ sizes
    y = (x - x.mean(axis=0)) * np.sqrt(size)
    prec = _windowed(_autocovariance(y), n, walkers=float(size.sum()), window_c=WALKER_WINDOW_C)
    if ngroups >= 2 and populations:  # the scatter alone, with its own noise (G − 1 dof); no window needed
        return replace(prec, error=between_groups_error(x.mean(axis=0), size),
                       relative=1.0 / math.sqrt(2.0 * (ngroups - 1)), reliable=True)
    if ngroups < 2 or (2 * prec.window + 1) <= SHORT_WINDOW * n:
        return prec
    return _between_groups(x, size, prec)


SHORT_WINDOW = 0.5
"""A window over more than this share of the series is mostly the centring bias (see :func:`_windowed`)."""


def _between_groups(x: np.ndarray, size: np.ndarray, prec: Precision) -> Precision:
    """The error of the mean from the scatter of the G groups' own run means (G − 1 dof), for a run too
    short for the window: each group is an independent chain, so its run mean carries all its
    autocorrelation, with no centring in time to take part of it out; × t_{G−1}(0.9)/z(0.9) for its dof.
    (Real PyQMC VMC of H2, 15 blocks after warm-up, 32 groups, 100 runs: the window's error covered 87 %
    at 2σ, std/σ 1.39, the blocks' lag-1 correlation of 0.23 unresolved by 15 blocks; this one 95 %;
    docs/benchmarks.md "Calibration".)"""
    error = between_groups_error(x.mean(axis=0), size)
    relative = max(prec.relative, 1.0 / math.sqrt(2.0 * (size.size - 1)))
    return replace(prec, error=max(error, prec.error), relative=float(relative))


def between_groups_error(means: ArrayLike, sizes: ArrayLike) -> float:
    """Error of the walker-weighted mean of G independent groups' run means (``sizes`` walkers each),
    from their scatter (G − 1 dof) × t_{G−1}(0.9)/z(0.9); NaN for fewer than 2 groups."""
    m, size = np.asarray(means, dtype=float).ravel(), np.asarray(sizes, dtype=float).ravel()
    if m.size < 2 or size.shape != m.shape:
        return float("nan")
    dof = m.size - 1
    mean = float(m @ size / size.sum())
    error = float(np.sqrt(np.sum(size * (m - mean) ** 2) / dof / size.sum()))
    from scipy.special import stdtrit  # Student's t margin of G − 1 dof, as errorbar.small_sample_factor
    return error * float(stdtrit(dof, 0.9)) / normal_quantile(0.9)


def _autocovariance(y: np.ndarray) -> np.ndarray:
    """Autocovariance (lags 0..n-1) of each column of centred ``y``: shape (n, columns)."""
    n = y.shape[0]
    size = 1 << max(2 * n - 1, 1).bit_length()  # ≥ 2n − 1 (no wrap-around), and a fast FFT length
    spectrum = np.fft.rfft(y, size, axis=0)
    return np.asarray(np.fft.irfft(spectrum * np.conj(spectrum), size, axis=0)[:n] / n)


def _windowed(columns: np.ndarray, n: int, walkers: float = 1.0, window_c: float = WINDOW_C) -> Precision:
    """Sokal's automatic window on the autocovariance pooled over independent series (the columns)."""
    chains = columns.shape[1]
    acov = columns.mean(axis=1)
    if acov[0] <= 0:
        return Precision(0.0, 1.0, 0, 0.0, True, int(n))
    taus = 2.0 * np.cumsum(acov / acov[0]) - 1.0
    ok = np.arange(n) >= window_c * taus
    window = int(np.argmax(ok)) if ok.any() else n - 1
    tau = max(float(taus[window]), 1.0 / n)
    # Centring each series on its own mean lowers every lag's autocovariance by about var(mean), so
    # the windowed sum is low by (2M+1)/N of itself; divide that out (N/(N-1) when M = 0), but at most
    # double it: a window over half the series is noise, and dividing by ~0 would make it explode.
    shortfall = max(1.0 - (2 * window + 1) / n, 0.5)
    error = float(np.sqrt(acov[0] * tau / shortfall / (n * walkers)))
    relative = float(np.sqrt((2 * window + 1) / (2 * n * chains)))
    sums = columns[0] + 2.0 * columns[1:window + 1].sum(axis=0)
    if chains > 1 and sums.mean() > 0:  # heavy tails: the groups' own sums scatter more than Gaussian data
        relative = max(relative, float(0.5 * sums.std(ddof=1) / (np.sqrt(chains) * sums.mean())))
    return Precision(error, tau, window, relative, bool(ok.any()), int(n))


def samples_to_target(est: Estimate, prec: Precision, target: float, z: float = Z_95) -> tuple[int, str]:
    """Total samples to run for ``target``, and why; ``(0, "")`` when the run may stop.

    Stops when the upper bound ``prec.upper(z)`` and the published (reblocked) error are both
    within the target. Otherwise plans the N at which σ·√(n/N)·(1 + z·rel·√(n/N)) = target, since
    both the error and its relative noise shrink as √(n/N); a noisy pilot (rel > PILOT_NOISE) aims
    short by (1 + rel) and grows at most NOISY_GROWTH-fold, so that a sharper look sets the final
    length; an error with no reblocking plateau or no autocorrelation window doubles the run instead.
    """
    n = est.n
    if not (target > 0 and math.isfinite(target)):
        raise ValueError(f"target must be a positive number, got {target}")
    if not (est.reliable and prec.reliable and math.isfinite(prec.error)):
        # stop only well inside the target: half of it for the unplateaued reblocked error
        bound_ok = prec.upper(z) <= target if prec.reliable else prec.error <= target / 2
        if est.error <= target / 2 and bound_ok:
            return 0, ""
        return 2 * n, f"error {est.error:.2e} not yet reliable (no reblocking plateau or correlation window)"
    if prec.upper(z) <= target and est.error <= target:
        return 0, ""
    a, b = prec.error * z * prec.relative, prec.error
    root = target / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * target)) / (2 * a)
    noisy = prec.relative > PILOT_NOISE
    total = n / root ** 2 / (1.0 + PILOT_SHORT * prec.relative if noisy else 1.0)
    if est.error > target:
        total = max(total, n * (est.error / target) ** 2)
    if noisy:
        total = min(total, NOISY_GROWTH * n)
    total = max(int(math.ceil(total)), int(n * (1 + MIN_GROWTH)) + 1)
    from statistics import NormalDist

    bound = f"{round(NormalDist().cdf(z) * 100, 1):g} % bound {prec.upper(z):.2e}"
    if est.error > target:
        return total, f"error {est.error:.2e} > target {target:.2e} ({bound})"
    return total, f"error {est.error:.2e} is within target {target:.2e} but its {bound} is not"
