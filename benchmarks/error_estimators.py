"""How well does a run know its own error bar? (issue 6: why the target-error rule costs what it does)

The target-error rule stops on an *estimate* of the error of the mean; to be right 95 % of the time it
must put a margin on that estimate, and the margin is set by how noisy the estimate is. This script
measures, for three estimators, on series whose true error is known:

- ``mean``: estimate ÷ true error (bias), and ``sd``: its relative scatter;
- ``stated``: the relative noise the estimator claims for itself (what its upper bound uses);
- ``cover``: how often the one-sided 95 % bound, estimate·(1 + 1.645·stated), is ≥ the true error;
- ``floor``: (1 + 1.645·sd)², the blocks a rule stopping on this estimator must run ÷ truly needed.

Estimators: ``reblock`` (``stats.estimate``, the published error; stated = 1/√(2(blocks−1))),
``window`` (``stats.precision``, Sokal's windowed autocorrelation sum, what the rule plans and stops on)
and ``ar-bic``, an autoregressive spectral estimate at frequency zero (Yule–Walker, order by BIC,
noise from the fitted model and the residual kurtosis) — a lower-noise candidate kept here, not in
the package, because of what it does on real QMC blocks and on a series with two time scales.

Series: AR(1) with φ = 0, 0.5, 0.9; AR(1) with Student-t(5) noise (heavy tails); the sum of two
AR(1)s (φ = 0.3 and 0.95: a slow mode under a fast one); and, with ``--chains DIR``, segments of
real PyQMC VMC block energies (every ``*.hdf5`` in DIR, e.g. the ``--workdir`` of
``sampling_efficiency.py --real``; their true error comes from the autocorrelation pooled over all).

With walker groups (PyQMC VMC as our run.py writes it: ``energygroups``), the ``walkers`` estimator
(``stats.precision_walkers``: the window pooled over independent walker groups) is measured beside the
window on the same runs' block series: 32 groups of AR(1), and real runs found under ``--chains``.

    python benchmarks/error_estimators.py --neff 391 1000 --chains /tmp/real   # about 40 s
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from autogenv2 import stats  # noqa: E402
from autogenv2.codes.pyqmc.reader import WalkerGroups  # noqa: E402
from sampling_efficiency import pooled_sigma1  # noqa: E402

Z = stats.Z_95


def ar_bic(x: np.ndarray) -> tuple[float, float]:
    """Error of the mean from an AR(p) fit (Levinson–Durbin on the autocovariance, p by BIC).

    Noise: var ln S(0) = (κ−1)/n + 4·1ᵀΓ⁻¹1·s²/(n(1−Σa)²), the innovation variance (κ its kurtosis)
    and the coefficients' asymptotic covariance s²Γ⁻¹/n propagated to S(0) = s²/(1−Σa)².
    """
    y = x - x.mean()
    n = y.size
    spectrum = np.fft.rfft(y, 2 * n)
    g = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / n
    a, s2 = np.zeros(0), g[0]
    best = (n * np.log(s2), a, s2)
    for p in range(1, int(min(n - 1, 10 * np.log10(n))) + 1):
        k = (g[p] - a @ g[p - 1:0:-1]) / s2
        a, s2 = np.concatenate([a - k * a[::-1], [k]]), s2 * (1 - k * k)
        bic = n * np.log(s2) + np.log(n) * p
        if bic < best[0]:
            best = (bic, a, s2)
    _, a, s2 = best
    p = a.size
    gain = 1.0 - a.sum()
    residual = lfilter(np.concatenate([[1.0], -a]), [1.0], y)[p:]
    kurtosis = np.mean(residual**4) / np.mean(residual**2) ** 2
    toeplitz = g[np.abs(np.subtract.outer(np.arange(p), np.arange(p)))]
    q = float(np.ones(p) @ np.linalg.solve(toeplitz, np.ones(p)) * s2) if p else 0.0
    var_ln_s = (kurtosis - 1) / n + 4 * q / (n * gain**2)
    return float(np.sqrt(s2 / gain**2 / n)), 0.5 * float(np.sqrt(var_ln_s))


def reblock(x: np.ndarray) -> tuple[float, float]:
    est = stats.estimate(x)
    return est.error, 1.0 / np.sqrt(2.0 * max(est.n // est.block_size - 1, 1))


def window(x: np.ndarray) -> tuple[float, float]:
    prec = stats.precision(x)
    return prec.error, prec.relative


ESTIMATORS: dict[str, Callable[[np.ndarray], tuple[float, float]]] = {
    "reblock": reblock, "window": window, "ar-bic": ar_bic}


def walkers(x: WalkerGroups) -> tuple[float, float]:
    prec = stats.precision_walkers(x.means, x.sizes)
    return prec.error, prec.relative


def ar1(phi: float, n: int, rng: np.random.Generator, noise: str = "normal") -> np.ndarray:
    eps = rng.normal(size=n) if noise == "normal" else rng.standard_t(5, size=n) * np.sqrt(3 / 5)
    eps *= np.sqrt(1 - phi**2)
    eps[0] /= np.sqrt(1 - phi**2)  # stationary start
    return lfilter([1.0], [1.0, -phi], eps)


def ar1_tau(phi: float) -> float:
    return (1 + phi) / (1 - phi)


def synthetic(neff: int, seeds: int) -> list[tuple[str, list[np.ndarray], float]]:
    """(name, series, true error of each series' mean); n = neff·τ samples each."""
    cases = []
    for phi in (0.0, 0.5, 0.9):
        n, rng = int(neff * ar1_tau(phi)), np.random.default_rng(1)
        series = [ar1(phi, n, rng) for _ in range(seeds)]
        cases.append((f"AR(1) φ={phi:g}", series, np.sqrt(ar1_tau(phi) / n)))
    n, rng = int(neff * 3), np.random.default_rng(2)
    cases.append(("AR(1) φ=0.5, t(5)", [ar1(0.5, n, rng, "t5") for _ in range(seeds)], np.sqrt(3 / n)))
    slow = 0.25  # variance of the slow mode
    tau = (ar1_tau(0.3) + slow * ar1_tau(0.95)) / (1 + slow)
    n, rng = int(neff * tau), np.random.default_rng(3)
    series = [ar1(0.3, n, rng) + np.sqrt(slow) * ar1(0.95, n, rng) for _ in range(seeds)]
    cases.append(("AR(1) 0.3 + 0.95", series, np.sqrt((1 + slow) * tau / n)))
    n, rng, groups = int(neff * 3), np.random.default_rng(4), 32
    runs = [WalkerGroups(np.column_stack([ar1(0.5, n, rng) for _ in range(groups)]) * np.sqrt(groups),
                         np.ones(groups))
            for _ in range(min(seeds, 100))]  # the mean of the 32 columns is a unit AR(1)
    cases.append(("32 groups of AR(1) φ=0.5", runs, np.sqrt(3 / n)))
    n, rng = int(neff * tau), np.random.default_rng(5)
    runs = [WalkerGroups(np.column_stack([ar1(0.3, n, rng) + np.sqrt(slow) * ar1(0.95, n, rng)
                                          for _ in range(groups)])
                         * np.sqrt(groups), np.ones(groups)) for _ in range(min(seeds, 100))]
    cases.append(("32 groups of 0.3 + 0.95", runs, np.sqrt((1 + slow) * tau / n)))
    return cases


def real(neff: int, directory: Path) -> list[tuple[str, list, float]]:
    """Segments of real PyQMC VMC runs (every ``*.hdf5`` under DIR); those with walker groups also whole."""
    import h5py

    from autogenv2.codes.pyqmc.reader import read_walker_groups
    chains, grouped = [], []
    for path in sorted(directory.rglob("*.hdf5")):
        with h5py.File(path, "r") as f:
            if "energytotal" not in f:
                continue
            energy = np.real(f["energytotal"][()])[1:]  # first block: warm-up
            nconfig = int(f["configs"].shape[0]) if "configs" in f else 0
        chains.append(energy)
        if nconfig and (groups := read_walker_groups(path, nconfig, energy.size + 1)) is not None:
            grouped.append(WalkerGroups(groups.means[1:], groups.sizes))
    if not chains:
        return []
    sigma1, tau = pooled_sigma1(chains)
    n = int(neff * tau)
    cases: list[tuple[str, list, float]] = []
    segments = [c[i:i + n] for c in chains for i in range(0, c.size - n + 1, n)]
    if len(segments) >= 10:
        cases.append((f"PyQMC ({len(segments)} × {n} blocks)", segments, sigma1 / np.sqrt(n)))
    runs = [WalkerGroups(g.means[i:i + n], g.sizes)
            for g in grouped for i in range(0, g.means.shape[0] - n + 1, n)]
    if len(runs) >= 10:
        cases.append((f"PyQMC, groups ({len(runs)} × {n})", runs, sigma1 / np.sqrt(n)))
    return cases


def measure(series: Sequence[np.ndarray | WalkerGroups], true: float) -> dict[str, dict[str, float]]:
    """Each estimator on each series; runs with walker groups also get the ``walkers`` estimator."""
    out = {}
    plain = [x.series() if isinstance(x, WalkerGroups) else x for x in series]
    chosen = dict(ESTIMATORS) if plain[0] is series[0] else {"window": window, "walkers": walkers}
    for name, estimator in chosen.items():
        pairs = np.array([estimator(x) for x in (series if name == "walkers" else plain)])
        ratio, stated = pairs[:, 0] / true, pairs[:, 1]
        out[name] = {"mean": ratio.mean(), "sd": ratio.std(ddof=1), "stated": stated.mean(),
                     "cover": np.mean(ratio * (1 + Z * stated) >= 1),
                     "floor": (1 + Z * ratio.std(ddof=1)) ** 2}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neff", type=int, nargs="+", default=[1000], help="independent samples per series")
    p.add_argument("--seeds", type=int, default=300)
    p.add_argument("--chains", type=Path, help="directory of PyQMC HDF5 files (energytotal, energygroups), "
                   "searched recursively")
    args = p.parse_args(argv)
    print(f"{'series':>28} {'neff':>6} {'estimator':>9} {'mean':>6} {'sd':>6} {'stated':>6} {'cover':>6} "
          f"{'floor':>6}")
    for neff in args.neff:
        cases = synthetic(neff, args.seeds)
        if args.chains:
            cases += real(neff, args.chains)
        for label, series, true in cases:
            for name, m in measure(series, true).items():
                print(f"{label:>28} {neff:>6} {name:>9} {m['mean']:6.3f} {m['sd']:6.3f} {m['stated']:6.3f} "
                      f"{m['cover']:6.2f} {m['floor']:6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
