"""Do the published error bars cover the truth at their stated rate? (issue 14)

For each estimator that publishes an error, many independent seeds are compared with a truth known
exactly (synthetic series) or from an independent long run (real PyQMC DMC). Printed per row: N
seeds, the share with |E − E_true| ≤ σ and ≤ 2σ (± binomial standard error), std(E)/mean(σ), and
for stationary rows how often the equilibration check raised a false alarm. Every row is printed for
the error before this issue (``reblock``: pyblock's choice, ``stats.estimate``) and the published one
(``published``: :func:`autogenv2.errorbar.publish`), with the health checks and their fix as the
Manager applies them (old: 4σ drift test, warm-up cut to half; new: ``health.equilibration`` and
sample more).

    python benchmarks/calibration.py --quick            # CI: 300 seeds a row, < 1 min; exit 1 if a
                                                        # published row covers < 85 % at 2σ
    python benchmarks/calibration.py                    # 2,000 seeds a row (docs/benchmarks.md)
    python benchmarks/calibration.py --seeds 50 --real-dmc 100 --dmc-blocks 60 180   # + H2 PyQMC DMC, 16
                                                        # populations, against the exact energy (~15 min)
    python benchmarks/calibration.py --seeds 50 --real-qwalk 150   # + H2 QWalk VMC, 20/40/60 blocks (~4 min)
    python benchmarks/calibration.py --seeds 50 --real-qwalk-dmc 100 --real-vmc 100 --real-optimize 100 \
        --workdir W
    python benchmarks/calibration.py --seeds 50 --real-qwalk-dmc 200 --qwalk-first-seed 300 --workdir W
                                                        # fresh QWalk seeds 300–499 (old: 0–51, 200–251)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from autogenv2 import errorbar, health, stats

Generator = Callable[[np.random.Generator, int], np.ndarray]
"""A series of at least n blocks whose stationary mean is 0."""


def ar1(phi: float, tails: float | None = None) -> Generator:
    """Stationary AR(1), unit variance; Student-t innovations with ``tails`` dof (unit variance)."""
    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        if tails is None:
            eps = rng.normal(size=n)
        else:
            eps = rng.standard_t(tails, size=n) / np.sqrt(tails / (tails - 2))
        eps = eps * np.sqrt(1 - phi**2)
        eps[0] = eps[0] / np.sqrt(1 - phi**2)
        return lfilter([1.0], [1.0, -phi], eps)
    return make


def ma1(theta: float) -> Generator:
    """x_t = ε_t + θ ε_{t−1}: lag-1 correlation θ/(1+θ²) (negative for θ < 0, as on some QWalk runs)."""
    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        eps = rng.normal(size=n + 1)
        return eps[1:] + theta * eps[:-1]
    return make


def skewed(shape: float) -> Generator:
    """Independent blocks from a negated, centred gamma(shape): skewness −2/√shape, excess kurtosis 6/shape
    (0.75: −2.3 and 8, like the real QWalk VMC blocks of H2 with skewness −2.3, kurtosis 12)."""
    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        return -(rng.gamma(shape, size=n) - shape) / np.sqrt(shape)
    return make


def transient(base: Generator, size: float, decay: float) -> Generator:
    """A start-up transient of random size (|N(0,1)|·size·σ) decaying over ``decay`` blocks."""
    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        return base(rng, n) + abs(rng.normal()) * size * np.exp(-np.arange(n) / decay)
    return make


def old_equilibration(x: np.ndarray, warmup: int) -> bool:
    """The check before issue 14: first quarter vs second half > 4σ, σ from the half's reblocking."""
    data = x[warmup:]
    if data.size < 16:
        return False
    quarter, half = data[: data.size // 4], data[data.size // 2:]
    late = stats.estimate(half)
    combined = late.error * np.sqrt(1 + half.size / quarter.size)
    return bool(combined > 0 and abs(quarter.mean() - late.mean) > 4.0 * combined)


def new_equilibration(x: np.ndarray, warmup: int) -> bool:
    return health.equilibration(x, warmup) is not None


@dataclass(frozen=True)
class Outcome:
    energy: float
    error: float
    alarm: bool      # the equilibration check fired on the first read
    failed: bool     # the finding survived its fix: the element fails, nothing is published


def pipeline_old(x: np.ndarray, n: int, warmup: int) -> Outcome:
    """Reader + Manager before issue 14: reblocked error; on a drift, warm-up = half the blocks."""
    run = x[: warmup + n]
    alarm = old_equilibration(run, warmup)
    if alarm:
        warmup = max(2 * warmup, run.size // 2)
        if old_equilibration(run, warmup):
            return Outcome(np.nan, np.nan, True, True)
    est = stats.estimate(run, warmup=warmup)
    return Outcome(est.mean, est.error, alarm, False)


def pipeline_new(x: np.ndarray, n: int, warmup: int) -> Outcome:
    """Reader + Manager after: published error; a drift samples as much again, then (if it persists)
    the warm-up takes the flagged quarter (health.FIXES['equilibration'])."""
    run = x[: warmup + n]
    alarm = new_equilibration(run, warmup)
    if alarm:
        run = x[: 2 * run.size]
        if new_equilibration(run, warmup):
            warmup = health.warmup_after_drift(run.size, warmup)
            if new_equilibration(run, warmup):
                return Outcome(np.nan, np.nan, True, True)
    pub = errorbar.publish(run, warmup=warmup)
    return Outcome(pub.mean, pub.error, alarm, False)


@dataclass(frozen=True)
class Row:
    name: str
    make: Generator
    n: int                # blocks after warm-up
    warmup: int = 0
    stationary: bool = True
    gate: bool = True     # --quick fails when the published 2σ coverage is below 85 %


def rows() -> list[Row]:
    return [
        Row("uncorrelated, 20 blocks (QWalk)", ar1(0.0), 20),
        Row("uncorrelated, 40 blocks (QWalk)", ar1(0.0), 40),
        Row("uncorrelated, 60 blocks (QWalk)", ar1(0.0), 60),
        Row("lag-1 −0.3, 40 blocks (QWalk)", ma1(-0.35), 40),
        Row("skewed (γ 0.75), 20 blocks (QWalk)", skewed(0.75), 20),
        Row("skewed (γ 0.75), 40 blocks (QWalk)", skewed(0.75), 40),
        Row("AR(1) φ=0.2, 40 blocks (weak)", ar1(0.2), 40),
        Row("AR(1) φ=0.5, 60 blocks (DMC)", ar1(0.5), 60),
        Row("AR(1) φ=0.5, 180 blocks (DMC)", ar1(0.5), 180),
        Row("AR(1) φ=0.5 t(3), 180 blocks", ar1(0.5, tails=3.0), 180),
        Row("AR(1) φ=0.9, 1000 blocks", ar1(0.9), 1000),
        Row("AR(1) φ=0.5, 1000 blocks", ar1(0.5), 1000),
        Row("transient 4σ/τ 4, warm-up 5, 60", transient(ar1(0.5), 4.0, 4.0), 60, 5, False),
        Row("transient 4σ/τ 15, warm-up 5, 60", transient(ar1(0.5), 4.0, 15.0), 60, 5, False, False),
    ]


def summarise(name: str, rule: str, energy: np.ndarray, error: np.ndarray, truth: np.ndarray | float,
              alarms: float | None = None, failed: float = 0.0) -> dict[str, object]:
    ok = np.isfinite(energy) & np.isfinite(error)
    dev = np.abs(energy[ok] - (truth[ok] if isinstance(truth, np.ndarray) else truth))
    sig = error[ok]
    n = int(ok.sum())
    if n < 2:
        nan = float("nan")
        return {"row": name, "rule": rule, "N": n, "cov1": nan, "se1": nan, "cov2": nan, "se2": nan,
                "ratio": np.nan, "alarm": alarms, "failed": failed}
    c1, c2 = float(np.mean(dev <= sig)), float(np.mean(dev <= 2 * sig))
    spread = float(np.std(energy[ok], ddof=1) if isinstance(truth, float) else np.sqrt(np.mean(dev**2)))
    return {"row": name, "rule": rule, "N": n, "cov1": c1, "se1": np.sqrt(c1 * (1 - c1) / n), "cov2": c2,
            "se2": np.sqrt(c2 * (1 - c2) / n), "ratio": spread / float(np.mean(sig)), "alarm": alarms,
            "failed": failed}


def run_row(row: Row, seeds: int) -> list[dict[str, object]]:
    out = []
    for rule, pipe in (("reblock", pipeline_old), ("published", pipeline_new)):
        res = [pipe(row.make(np.random.default_rng(seed), 4 * (row.n + row.warmup)), row.n, row.warmup)
               for seed in range(seeds)]
        energy = np.array([r.energy for r in res])
        error = np.array([r.error for r in res])
        alarms = float(np.mean([r.alarm for r in res]))
        failed = float(np.mean([r.failed for r in res]))
        out.append(summarise(row.name, rule, energy, error, 0.0, alarms, failed)
                   | {"gate": row.gate, "stationary": row.stationary})
    return out


def old_trace_converged(energy: np.ndarray, error: np.ndarray, window: int = 3, sigmas: float = 2.0) -> bool:
    """The optimization test before issue 14: range of the last ``window`` ≤ sigmas·√2·rms(error)."""
    last, err = energy[-window:], error[-window:]
    return bool(last.max() - last.min() <= sigmas * np.sqrt(np.mean(err**2)) * np.sqrt(2.0))


def optimization_rows(seeds: int, first: int = 10, window: int = 3,
                      most: int = 40) -> list[dict[str, object]]:
    """Traces E_i = 20·exp(−i/2) + k·N(0, 1) with stated errors 1 (PyQMC's per-iteration error ignores
    the iteration-to-iteration noise of the parameters: k > 1). The Reader looks after ``first``
    iterations, then every ``window`` more up to ``most`` (OptimizeReader's defaults); the truth is the
    plateau, 0. A trace that never converges publishes nothing ('fail')."""
    out = []
    for k in (1.0, 3.0, 10.0):
        for rule in ("reblock", "published"):
            energy, error, failed = [], [], 0
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                trace = 20.0 * np.exp(-np.arange(most) / 2.0) + k * rng.normal(size=most)
                stated = np.ones(most)
                for n in range(first, most + 1, window):
                    if rule == "reblock" and old_trace_converged(trace[:n], stated[:n], window):
                        energy.append(trace[n - 1])
                        error.append(1.0)
                        break
                    judged = errorbar.trace_convergence(trace[:n], stated[:n], window, 2.0)
                    if rule == "published" and judged.converged:
                        energy.append(trace[n - 1])
                        error.append(judged.error)
                        break
                else:
                    failed += 1
            name = f"optimization, noise {k:g}× stated"
            out.append(summarise(name, rule, np.array(energy), np.array(error),
                                 0.0, None, failed / seeds) | {"gate": k < 2, "stationary": False})
    return out


def tail_blocks(rng: np.random.Generator, m: int, n: int = 1000, p: float = 1e-4, xm: float = 50.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """``m`` blocks of ``n`` samples N(0, 1) − Y·B, B ~ Bernoulli(p), Y Pareto (α = 3, from ``xm``): a
    finite variance but no fourth moment, like local energies near an unmet cusp; centred (truth 0).
    Returns the block means and each block's sample variance (QWalk's ``total_energyvar``)."""
    mean_g, spread = rng.normal(size=m) / np.sqrt(n), rng.chisquare(n - 1, size=m)
    total, squares = n * mean_g, spread + n * mean_g**2
    for b, k in enumerate(rng.binomial(n, p, size=m)):
        y = (rng.pareto(3.0, size=k) + 1.0) * xm
        total[b] -= y.sum()
        squares[b] += float(np.sum(y * y) - 2.0 * np.sum(rng.normal(size=k) * y))
    return total / n + 1.5 * p * xm, (squares - total**2 / n) / (n - 1)


def tail_rows(seeds: int) -> list[dict[str, object]]:
    """Blocks of Pareto-tailed samples (:func:`tail_blocks`: block skewness −1.4, excess kurtosis 7 over
    2,000 blocks), read on their first 20, 40, 60 blocks: ``reblock`` with stats.estimate, ``published``
    with the blocks' sample variances (errorbar.tail_floor)."""
    runs = [tail_blocks(np.random.default_rng(seed), 60) for seed in range(seeds)]
    out = []
    for n in (20, 40, 60):
        for rule in ("reblock", "published"):
            est = [stats.estimate(e[:n]) if rule == "reblock"
                   else errorbar.publish(e[:n], sample_variance=v[:n])
                   for e, v in runs]
            out.append(summarise(f"Pareto-tailed samples, {n} blocks", rule, np.array([x.mean for x in est]),
                                 np.array([x.error for x in est]), 0.0) | {"gate": True, "stationary": True})
    return out


def population_rows(seeds: int, groups: int = 16) -> list[dict[str, object]]:
    """DMC in ``groups`` populations each branched on its own (DMCWriter's ``walker_groups``): per
    population AR(1) φ = 0.5 blocks plus a slow mode, an offset constant over the run as large as the
    blocks' whole-run error (the real runs' scatter exceeds their blocks' by about that). ``reblock``:
    the averaged series as one population publishes it (errorbar.publish); ``published``: the
    populations' scatter (sampling.publish)."""
    from autogenv2.sampling import WalkerGroups, publish

    out = []
    for n in (60, 180):
        size = ar1_error(0.5, n)
        runs = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            x = np.column_stack([ar1(0.5)(rng, n) for _ in range(groups)]) + rng.normal(0, size, groups)
            runs.append(x)
        for rule in ("reblock", "published"):
            energy, error = [], []
            for x in runs:
                if rule == "reblock":
                    pub = errorbar.publish(x.mean(axis=1))
                    energy.append(pub.mean)
                    error.append(pub.error)
                else:
                    found = publish(x.mean(axis=1), None, 0, WalkerGroups(x, np.ones(groups), True))
                    assert found is not None
                    energy.append(found.estimate.mean)
                    error.append(found.estimate.error)
            out.append(summarise(f"DMC, {groups} populations, {n} blocks", rule, np.array(energy),
                                 np.array(error), 0.0) | {"gate": True, "stationary": True})
    return out


def ar1_error(phi: float, n: int) -> float:
    """The exact standard error of the mean of n blocks of unit-variance AR(1)."""
    k = np.arange(1, n)
    return float(np.sqrt((1 + 2 * np.sum((1 - k / n) * phi**k)) / n))


def print_table(table: list[dict[str, object]]) -> None:
    print(f"{'series':>34} {'rule':>9} {'N':>5} {'cov 1σ':>13} {'cov 2σ':>13} {'std/σ':>6} "
          f"{'alarm':>6} {'fail':>5}")
    for r in table:
        mark = " " if r.get("stationary", True) else "*"
        alarm = "" if r["alarm"] is None else f"{r['alarm']:.3f}{mark}"
        print(f"{r['row']:>34} {r['rule']:>9} {r['N']:>5} {r['cov1']:>7.3f}±{r['se1']:.3f} "
              f"{r['cov2']:>7.3f}±{r['se2']:.3f} {r['ratio']:>6.2f} {alarm:>6} {r['failed']:>5.3f}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 seeds a row; exit 1 below 85 %% at 2σ")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per synthetic row (default 2000)")
    parser.add_argument("--real-dmc", type=int, default=0, metavar="SEEDS", help="also run H2 PyQMC DMC")
    parser.add_argument("--dmc-blocks", type=int, nargs="+", default=[60])
    parser.add_argument("--dmc-first-seed", type=int, default=1000, help="first seed of the DMC runs")
    parser.add_argument("--dmc-groups", type=int, default=16,
                        help="DMC populations (DMCWriter walker_groups; 0: one population, pyq.DMC)")
    parser.add_argument("--real-qwalk", type=int, default=0, metavar="SEEDS", help="also run H2 QWalk VMC")
    parser.add_argument("--qwalk-blocks", type=int, nargs="+", default=[20, 40, 60])
    parser.add_argument("--real-qwalk-dmc", type=int, default=0, metavar="SEEDS",
                        help="also run H2 QWalk DMC")
    parser.add_argument("--qwalk-first-seed", type=int, default=0,
                        help="first seed of the QWalk runs (VMC and DMC)")
    parser.add_argument("--real-vmc", type=int, default=0, metavar="SEEDS",
                        help="also run H2 PyQMC VMC (VMCWriter: 1,000 walkers, 32 walker groups, 20 blocks)")
    parser.add_argument("--real-optimize", type=int, default=0, metavar="SEEDS",
                        help="also run H2 PyQMC OPTIMIZE")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the real runs here")
    args = parser.parse_args(argv)
    seeds = args.seeds or (300 if args.quick else 2000)
    print(f"synthetic: {seeds} seeds a row; truth 0; 'alarm': how often the equilibration check fired "
          "(a false alarm, except on rows marked *)")
    table = [r for row in rows() for r in run_row(row, seeds)] + tail_rows(seeds) + optimization_rows(seeds)
    table += population_rows(seeds)
    if args.real_dmc:
        from calibration_real import real_dmc_population_rows, real_dmc_rows
        if args.dmc_groups:
            table += real_dmc_population_rows(args.real_dmc, args.dmc_blocks, args.workdir, args.dmc_groups,
                                              args.dmc_first_seed)
        else:
            table += real_dmc_rows(args.real_dmc, args.dmc_blocks, args.workdir,
                                   first_seed=args.dmc_first_seed)
    if args.real_qwalk:
        from calibration_real import real_qwalk_rows
        table += real_qwalk_rows(args.real_qwalk, args.qwalk_blocks, args.workdir,
                                 first_seed=args.qwalk_first_seed)
    if args.real_qwalk_dmc:
        from calibration_real import real_qwalk_rows
        table += real_qwalk_rows(args.real_qwalk_dmc, args.qwalk_blocks, args.workdir, 1500, "dmc",
                                 first_seed=args.qwalk_first_seed)
    if args.real_vmc or args.real_optimize:
        from calibration_real import real_optimize_rows, real_vmc_rows
        work = args.workdir or Path(tempfile.mkdtemp(prefix="calibration-"))
        table += real_vmc_rows(args.real_vmc, 20, work, ref_blocks=200) if args.real_vmc else []
        table += real_optimize_rows(args.real_optimize, work) if args.real_optimize else []
    print_table(table)
    low = [r for r in table if r["rule"] == "published" and r.get("gate", True)
           and float(r["cov2"]) < 0.85]  # type: ignore[arg-type]
    if low:
        print("FAIL: 2σ coverage below 85 %: " + ", ".join(str(r["row"]) for r in low))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
