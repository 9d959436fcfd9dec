"""How efficiently does the target-error control loop reach its target? (issue 6, "Done means")

The loop is the Manager's: run N0 blocks; let the Reader judge them (``MCReader.judge``, the code
the PyQMC and toy Readers run: ``stats.estimate`` + ``stats.precision`` (or, with walker groups,
``stats.precision_walkers``) + ``stats.samples_to_target``); while it asks for more, continue the
*same* run to the total it asks for; at most ``--attempts`` runs. Reported per setting, over many seeds:

- ``run/need``: blocks run ÷ blocks truly needed (mean and 95th percentile; goal: mean ≤ 1.2);
- ``est_ok``: fraction of seeds whose final *published* σ ≤ target;
- ``true_ok``: fraction whose final *true* σ ≤ target (goal for both: ≥ 0.95);
- ``runs``: mean number of runs (each one is a queued job for a real calculation).

``--baseline`` adds the rule used before (plan N·((σ/target)²·1.1 − 1) more blocks from the
reblocked σ, stop when σ ≤ target) on the same seeds, for comparison.

Synthetic part: stationary AR(1) series x_t = φ x_{t-1} + √(1-φ²) ε_t, whose true error of the mean
is known exactly. The size of a problem is set by ``neff``, the number of *independent* blocks the
target needs (truly needed = neff·τ blocks, τ = (1+φ)/(1-φ)), because that is what limits how well
a run can know its own error bar from its block series. ``--groups G`` > 1 gives the Reader, as a
PyQMC VMC does, the block means of G independent walker groups (G AR(1) chains whose mean is the
block series): the same blocks, known √G times better.

Real part (``--real``): PyQMC VMC on H2, each run the ``run.py`` our VMCWriter writes (with
``--real-groups`` walker groups), continued in place (same HDF5 file, larger total ``nblocks``);
"truly needed" comes from the autocorrelation of the block series pooled over the reference run
and every seed's run (a second estimate pooled over all walker groups is printed as a cross-check).

    python benchmarks/sampling_efficiency.py --groups 1 --neff 1000 3000 10000    # block series, ~2 min
    python benchmarks/sampling_efficiency.py --groups 32 --neff 391 1000 --phi 0 0.5  # walker groups, ~2 min
    python benchmarks/sampling_efficiency.py --groups 16 --populations --neff 391 1000 --phi 0 0.5  # DMC
    python benchmarks/sampling_efficiency.py --real --real-seeds 50 --groups 32 --neff 1000 --phi 0.5 \\
        --seeds 2                                                   # + real PyQMC, ~12 min
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from autogenv2 import stats  # noqa: E402
from autogenv2.codes.base import Verdict  # noqa: E402
from autogenv2.codes.pyqmc.reader import MCReader, WalkerGroups  # noqa: E402

# --- the loop under test ------------------------------------------------------------------------

@dataclass(frozen=True)
class LoopResult:
    n: int          # blocks run in total
    error: float    # final published σ
    runs: int       # runs (jobs) used, including the first


def control_loop(run: Callable[[int], np.ndarray | WalkerGroups], n0: int, target: float, max_runs: int = 8,
                 warmup: int = 0, confidence: float = 0.95) -> LoopResult:
    """``run(n)`` extends the run to ``n`` blocks in total and returns all of it: the block series,
    or the block means of its walker groups (whose weighted mean is the block series)."""
    reader = MCReader(target_error=target, target_confidence=confidence, warmup=warmup, min_blocks=2,
                      max_blocks=10**9)
    n = n0
    for attempt in range(1, max_runs + 1):
        data = run(n)
        if isinstance(data, WalkerGroups):
            read = reader.judge(data.series(), None, n, "series", data)
        else:
            read = reader.judge(data, None, n, "series")
        if read.verdict is Verdict.complete or attempt == max_runs or not read.more:
            break
        n = int(read.more["nblocks"])
    return LoopResult(n, float(read.results["error"]), attempt)


def baseline_loop(run: Callable[[int], np.ndarray], n0: int, target: float, max_runs: int = 8,
                  warmup: int = 0, safety: float = 1.1) -> LoopResult:
    """The earlier rule: plan from the reblocked σ with a safety factor; unreliable → double."""
    n = n0
    for attempt in range(1, max_runs + 1):
        est = stats.estimate(run(n), warmup=warmup)
        if (est.error <= target and est.reliable) or attempt == max_runs:
            break
        n += n if not est.reliable else max(1, stats.blocks_needed(est.error, target, est.n, safety))
    return LoopResult(n, est.error, attempt)


def summarize(ns: np.ndarray, errors: np.ndarray, true_errors: np.ndarray, runs: np.ndarray,
              needed: float, target: float) -> dict[str, float]:
    ratio = ns / needed
    return {"run/need": float(ratio.mean()), "p95": float(np.percentile(ratio, 95)),
            "est_ok": float(np.mean(errors <= target)), "true_ok": float(np.mean(true_errors <= target)),
            "runs": float(runs.mean())}


# --- synthetic: AR(1) ---------------------------------------------------------------------------

def ar1_true_error(phi: float, n: int) -> float:
    """Exact standard error of the mean of n consecutive samples of a unit-variance AR(1)."""
    if phi == 0.0:
        return 1.0 / np.sqrt(n)
    tau = (1 + phi) / (1 - phi) - 2 * phi * (1 - phi**n) / (n * (1 - phi) ** 2)
    return float(np.sqrt(tau / n))


def ar1_needed(phi: float, target: float) -> int:
    """Smallest n whose true error is ≤ target."""
    n = max(1, int(np.ceil((1 + phi) / (1 - phi) / target**2)))
    while ar1_true_error(phi, n) > target:
        n += 1
    while n > 1 and ar1_true_error(phi, n - 1) <= target:
        n -= 1
    return n


class AR1:
    """AR(1) chains that can be extended, like a QMC run continued from its last walkers.

    ``groups`` = 1: one chain, the block series itself. ``groups`` = G: G independent chains of
    variance G (walker groups), whose mean is a unit-variance AR(1) block series.
    """

    def __init__(self, phi: float, seed: int, groups: int = 1, populations: bool = False) -> None:
        self.phi, self.groups, self.rng = phi, groups, np.random.default_rng(seed)
        self.populations = populations
        self.x = np.empty((0, groups))

    def extend_to(self, n: int) -> np.ndarray | WalkerGroups:
        k = n - self.x.shape[0]
        if k > 0:
            eps = self.rng.normal(size=(k, self.groups)) * np.sqrt(1 - self.phi**2)
            if self.x.shape[0] == 0:
                eps[0] = self.rng.normal(size=self.groups)  # stationary start: no warm-up
                zi = np.zeros((1, self.groups))
            else:
                zi = self.phi * self.x[-1:]
            new = lfilter([1.0], [1.0, -self.phi], eps, axis=0, zi=zi)[0]
            self.x = np.concatenate([self.x, new])
        if self.groups == 1:
            return self.x[:, 0]
        return WalkerGroups(self.x * np.sqrt(self.groups), np.ones(self.groups), self.populations)


def synthetic_case(args: tuple[str, float, int, int, int, int, float, int, bool]) -> dict[str, float | str]:
    rule, phi, neff, factor, seeds, attempts, confidence, groups, populations = args
    tau = (1 + phi) / (1 - phi)
    target = ar1_true_error(phi, int(neff * tau))
    needed = ar1_needed(phi, target)
    n0 = max(needed // factor, 8)
    results = [control_loop(AR1(phi, seed, groups, populations).extend_to, n0, target, attempts,
                            confidence=confidence)
               if rule == "new" else baseline_loop(AR1(phi, seed).extend_to, n0, target, attempts)
               for seed in range(seeds)]
    ns = np.array([r.n for r in results])
    return {"rule": rule if rule != "new" or confidence == 0.95 else f"new@{confidence:g}",
            "groups": groups if rule == "new" else 1, "phi": phi, "neff": neff, "need": needed,
            **summarize(ns, np.array([r.error for r in results]),
                        np.array([ar1_true_error(phi, int(n)) for n in ns]),
                        np.array([r.runs for r in results]), needed, target)}


# --- real: PyQMC VMC on H2 ---------------------------------------------------------------------

SCF = dict(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="cc-pvdz", verbose=0)


def _vmc_chain(job: tuple[str, str, int, int, int, int, int, float | None, int, float]) -> dict:
    """One seed: the control loop on a real VMC continued in place (runs in a worker process).

    Each run is the ``run.py`` our VMCWriter writes (executed in this process, so PyQMC is imported
    once), so the walker groups are recorded exactly as in production.
    """
    workdir, name, seed, nconfig, nsteps, groups, warmup, n0, target, attempts, confidence = job
    import contextlib
    import runpy

    from autogenv2.codes.pyqmc.reader import read_walker_groups
    from autogenv2.codes.pyqmc.writer import VMCWriter
    directory = Path(workdir) / name
    directory.mkdir(exist_ok=True)
    writer = VMCWriter(nconfig=nconfig, nsteps_per_block=nsteps, tstep=0.5, seed=10**6 * (seed + 1),
                       walker_groups=groups)

    def extend_to(n: int) -> np.ndarray | WalkerGroups:
        writer.nblocks = n
        writer.write(directory, {"chkfile": Path(workdir) / "mf.chk"})
        here = os.getcwd()
        os.chdir(directory)
        try:
            with open("stdout.txt", "a") as out, contextlib.redirect_stdout(out):
                runpy.run_path("run.py", run_name="__main__")
        finally:
            os.chdir(here)
        energies = block_series(directory / "vmc.hdf5", 0)
        if energies.size != n:
            raise RuntimeError(f"{directory}: {energies.size} blocks after asking for {n}")
        walkers = read_walker_groups(directory / "vmc.hdf5", nconfig, n)
        return energies if walkers is None else walkers

    if target is None:  # the reference run
        extend_to(n0)
        return {"energy": block_series(directory / "vmc.hdf5", 0).tolist()}
    r = control_loop(extend_to, n0, target, attempts, warmup=warmup, confidence=confidence)
    return {"n": r.n, "error": r.error, "runs": r.runs,
            "energy": block_series(directory / "vmc.hdf5", 0).tolist()}


def pooled_sigma1(chains: Sequence[np.ndarray], max_lag: int = 200) -> tuple[float, float]:
    """σ of one block with correlation included (√(var·τ)) from autocovariances pooled over chains.

    Each chain is centred on its own mean, which lowers every lag by about var(mean); the windowed
    sum is divided by 1 − (2M+1)·chains/blocks to undo that, as in stats.precision.
    """
    acov, count = np.zeros(max_lag), np.zeros(max_lag)
    for x in chains:
        y = x - x.mean()
        for lag in range(min(max_lag, y.size)):
            acov[lag] += float(np.dot(y[: y.size - lag], y[lag:]))
            count[lag] += y.size - lag
    rho = (acov / count) / (acov[0] / count[0])
    taus = 2 * np.cumsum(rho) - 1
    window = int(np.argmax(np.arange(max_lag) >= stats.WINDOW_C * taus))
    tau = float(taus[window])
    shortfall = 1 - (2 * window + 1) * len(chains) / count[0]
    return float(np.sqrt(acov[0] / count[0] * tau / shortfall)), tau


def group_columns(directory: Path, nconfig: int, warmup: int = 1) -> list[np.ndarray]:
    """A run's walker-group columns, scaled to the variance of its block series (same autocorrelation)."""
    import h5py

    from autogenv2.codes.pyqmc.reader import read_walker_groups
    with h5py.File(directory / "vmc.hdf5", "r") as f:
        blocks = len(f["energytotal"])
    walkers = read_walker_groups(directory / "vmc.hdf5", nconfig, blocks)
    if walkers is None:
        return []
    scale = np.sqrt(walkers.sizes / walkers.sizes.sum())
    return [column * s for column, s in zip(walkers.means[warmup:].T, scale, strict=True)]


def block_series(path: Path, warmup: int) -> np.ndarray:
    import h5py
    with h5py.File(path, "r") as f:
        return np.real(f["energytotal"][()])[warmup:]


def finished_seed(directory: Path, target: float, warmup: int) -> dict:
    """--reanalyse: what a seed's run ended with, from its files (runs = "VMC finished" lines)."""
    read = MCReader(target_error=target, warmup=warmup).read(directory, 0)
    runs = (directory / "stdout.txt").read_text().count("VMC finished")
    return {"n": read.results["blocks"], "error": read.results["error"], "runs": runs,
            "energy": block_series(directory / "vmc.hdf5", 0).tolist()}


def real(args: argparse.Namespace, workdir: Path) -> dict[str, float | str]:
    start = time.perf_counter()
    warmup = args.real_warmup
    common = (args.nconfig, args.nsteps, args.real_groups, warmup)
    if not args.reanalyse:
        from pyscf import gto, scf
        mf = scf.RHF(gto.M(**SCF))
        mf.chkfile = str(workdir / "mf.chk")
        mf.kernel()
        _vmc_chain((str(workdir), "reference", 999, *common, args.real_reference, None, 0, 0.95))
    ref = block_series(workdir / "reference" / "vmc.hdf5", warmup)
    sigma1_ref, tau_ref = pooled_sigma1([ref])
    nominal = args.real_factor * args.real_n0
    target = sigma1_ref / np.sqrt(nominal)
    print(f"real: reference {ref.size + warmup} blocks ({time.perf_counter() - start:.0f} s), σ of one block "
          f"{sigma1_ref:.5f}, τ {tau_ref:.2f} blocks; target {target:.6f} (≈ {nominal} blocks)", flush=True)
    if args.reanalyse:
        done = [finished_seed(workdir / f"seed{seed}", target, warmup) for seed in range(args.real_seeds)]
    else:
        jobs = [(str(workdir), f"seed{seed}", seed, *common, args.real_n0, float(target), args.attempts,
                 args.confidence_first) for seed in range(args.real_seeds)]
        with Pool(args.processes) as pool:
            done = pool.map(_vmc_chain, jobs)
    chains = [ref] + [np.array(d["energy"])[warmup:] for d in done]
    # earlier --real runs of the same system sharpen the oracle (their runs are the same process)
    chains += [block_series(path, warmup)
               for other in args.oracle_from for path in sorted(other.rglob("vmc.hdf5"))]
    sigma1, tau = pooled_sigma1(chains)
    needed = (sigma1 / target) ** 2 + warmup
    ns = np.array([d["n"] for d in done])
    print(f"real: {args.real_seeds} seeds in {time.perf_counter() - start:.0f} s; oracle pooled over "
          f"{len(chains)} runs, {sum(c.size for c in chains)} blocks: σ of one block {sigma1:.5f}, "
          f"τ {tau:.2f}, "
          f"truly needed {needed:.0f} blocks (neff ≈ {needed / tau:.0f})", flush=True)
    dirs = [workdir / name for name in ["reference"] + [f"seed{i}" for i in range(args.real_seeds)]]
    dirs += [path.parent for other in args.oracle_from for path in sorted(other.rglob("vmc.hdf5"))]
    columns = [c for directory in dirs for c in group_columns(directory, args.nconfig, warmup)]
    if columns:  # a second oracle, from every walker group of every run (not used for the figures)
        sigma1_g, tau_g = pooled_sigma1(columns)
        print(f"real: cross-check from {len(columns)} walker-group columns: σ of one block {sigma1_g:.5f} "
              f"({sigma1_g / sigma1 - 1:+.2%}), τ {tau_g:.2f}", flush=True)
    return {"rule": f"new@{args.confidence_first:g}", "groups": args.real_groups, "phi": float("nan"),
            "neff": round(needed / tau), "need": round(needed),
            **summarize(ns, np.array([d["error"] for d in done]), sigma1 / np.sqrt(ns - warmup),
                        np.array([d["runs"] for d in done]), needed, target)}


# --- driver ------------------------------------------------------------------------------------

def print_table(rows: Sequence[dict[str, float | str]]) -> None:
    cols = list(rows[0])
    print("  ".join(f"{c:>8}" for c in cols))
    for row in rows:
        print("  ".join(f"{row[c]:>8.3g}" if isinstance(row[c], float) else f"{row[c]:>8}" for c in cols))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phi", type=float, nargs="+", default=[0.0, 0.5, 0.9])
    p.add_argument("--neff", type=int, nargs="+", default=[1000, 3000, 10000],
                   help="independent samples the target needs (synthetic)")
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--groups", type=int, nargs="+", default=[1, 32],
                   help="walker groups the Reader sees (1: the block series only, as for QWalk and DMC; "
                   "32: PyQMC VMC's default)")
    p.add_argument("--populations", action="store_true",
                   help="the groups are DMC populations (their scatter is the error: PyQMC DMCWriter)")
    p.add_argument("--factor", type=int, default=10, help="truly needed ÷ blocks of the first run")
    p.add_argument("--attempts", type=int, default=8, help="maximum number of runs")
    p.add_argument("--confidence", type=float, nargs="+", default=[0.95],
                   help="target_confidence of the Reader (the real part uses the first)")
    p.add_argument("--baseline", action="store_true",
                   help="also run the earlier rule (safety 1.1) on the same seeds")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--real", action="store_true", help="also run the PyQMC part")
    p.add_argument("--real-seeds", type=int, default=50)
    p.add_argument("--real-n0", type=int, default=100, help="VMC blocks in the first run, warm-up included")
    p.add_argument("--real-warmup", type=int, default=20,
                   help="blocks dropped from the start "
                        "(the first ~20 one-step blocks drift by about 0.02 Ha)")
    p.add_argument("--real-factor", type=int, default=10, help="nominal blocks needed ÷ real-n0")
    p.add_argument("--real-reference", type=int, default=5000, help="blocks of the reference run")
    p.add_argument("--nconfig", type=int, default=50)
    p.add_argument("--real-groups", type=int, default=32,
                   help="VMCWriter.walker_groups (0: block series only)")
    p.add_argument("--nsteps", type=int, default=1, help="VMC steps per block")
    p.add_argument("--reanalyse", action="store_true",
                   help="read the runs already in --workdir instead of running")
    p.add_argument("--oracle-from", type=Path, nargs="*", default=[],
                   help="workdirs of earlier --real runs of the same system: their blocks join the oracle")
    p.add_argument("--workdir", type=Path, help="keep the PyQMC files here (default: a temporary directory)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.confidence_first = args.confidence[0]
    os.environ["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    cases = [("new", phi, neff, args.factor, args.seeds, args.attempts, c, g, args.populations and g > 1)
             for g in args.groups for c in args.confidence for phi in args.phi for neff in args.neff]
    if args.baseline:
        cases += [("baseline", phi, neff, args.factor, args.seeds, args.attempts, 0.0, 1, False)
                  for phi in args.phi for neff in args.neff]
    with Pool(args.processes) as pool:
        rows = pool.map(synthetic_case, cases)
    print(f"synthetic AR(1): first run = need/{args.factor}, {args.seeds} seeds, ≤ {args.attempts} runs "
          f"({time.perf_counter() - start:.0f} s)")
    print_table(rows)
    for groups in args.groups:
        for neff in args.neff:
            mine = [r for r in rows if r["neff"] == neff and r["rule"] == "new" and r["groups"] == groups]
            if not mine:
                continue
            c = stats.WINDOW_C if groups == 1 else stats.WALKER_WINDOW_C
            floor = (1 + 1.645 * np.sqrt(c / (neff * groups))) ** 2
            print(f"groups {groups}, neff {neff}: "
                  f"worst run/need {max(r['run/need'] for r in mine):.3f} (goal ≤ 1.2), "
                  f"worst est_ok {min(r['est_ok'] for r in mine):.2f}, worst true_ok "
                  f"{min(r['true_ok'] for r in mine):.2f} (goal ≥ 0.95); floor (1+1.645·s)² with "
                  f"s = √(c/(neff·groups)) = √({c:g}/({neff}·{groups})): {floor:.3f}")
    if args.real:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            row = real(args, workdir)
        print(f"real PyQMC VMC (H2, nconfig {args.nconfig}, {args.nsteps} steps/block): "
              f"{time.perf_counter() - start:.0f} s in all")
        print_table([row])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
