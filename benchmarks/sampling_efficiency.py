"""How efficiently does the target-error control loop reach its target? (issue 6, "Done means")

The loop is the Manager's: run N0 blocks; let the Reader judge them (``MCReader.judge``, the code
the PyQMC and toy Readers run: ``stats.estimate`` + ``stats.precision`` +
``stats.samples_to_target``); while it asks for more, continue the *same* series to the total it
asks for; at most ``--attempts`` runs. Reported per setting, over many seeds:

- ``run/need``: blocks run ÷ blocks truly needed (mean and 95th percentile; goal: mean ≤ 1.2);
- ``est_ok``: fraction of seeds whose final *published* (reblocked) σ ≤ target;
- ``true_ok``: fraction whose final *true* σ ≤ target (goal for both: ≥ 0.95);
- ``runs``: mean number of runs (each one is a queued job for a real calculation).

``--baseline`` adds the rule used before (plan N·((σ/target)²·1.1 − 1) more blocks from the
reblocked σ, stop when σ ≤ target) on the same seeds, for comparison.

Synthetic part: stationary AR(1) series x_t = φ x_{t-1} + √(1-φ²) ε_t, whose true error of the mean
is known exactly. The size of a problem is set by ``neff``, the number of *independent* samples the
target needs (truly needed = neff·τ samples, τ = (1+φ)/(1-φ)), because that is what limits how well
any run can know its own error bar. Real part (``--real``): PyQMC VMC on H2, continued in place
(same HDF5 file, larger total ``nblocks``); "truly needed" comes from the autocorrelation function
pooled over the reference run and every seed's chain.

    python benchmarks/sampling_efficiency.py                        # synthetic, ~2 min
    python benchmarks/sampling_efficiency.py --real --real-seeds 50 # + real PyQMC, ~25 min
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
from autogenv2.codes.pyqmc.reader import MCReader  # noqa: E402


# --- the loop under test ------------------------------------------------------------------------

@dataclass(frozen=True)
class LoopResult:
    n: int          # blocks run in total
    error: float    # final published σ
    runs: int       # runs (jobs) used, including the first


def control_loop(run: Callable[[int], np.ndarray], n0: int, target: float, max_runs: int = 8,
                 warmup: int = 0, confidence: float = 0.95) -> LoopResult:
    """``run(n)`` extends the series to ``n`` blocks in total and returns all of it."""
    reader = MCReader(target_error=target, target_confidence=confidence, warmup=warmup, min_blocks=2,
                      max_blocks=10**9)
    n = n0
    for attempt in range(1, max_runs + 1):
        read = reader.judge(run(n), None, n, "series")
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
    """One AR(1) chain that can be extended, like a QMC run continued from its last walkers."""

    def __init__(self, phi: float, seed: int) -> None:
        self.phi, self.rng, self.x = phi, np.random.default_rng(seed), np.empty(0)

    def extend_to(self, n: int) -> np.ndarray:
        k = n - self.x.size
        if k > 0:
            eps = self.rng.normal(size=k) * np.sqrt(1 - self.phi**2)
            if self.x.size == 0:
                eps[0] = self.rng.normal()  # stationary start: no warm-up
                new = lfilter([1.0], [1.0, -self.phi], eps)
            else:
                new = lfilter([1.0], [1.0, -self.phi], eps, zi=[self.phi * self.x[-1]])[0]
            self.x = np.concatenate([self.x, new])
        return self.x


def synthetic_case(args: tuple[str, float, int, int, int, int, float]) -> dict[str, float | str]:
    rule, phi, neff, factor, seeds, attempts, confidence = args
    tau = (1 + phi) / (1 - phi)
    target = ar1_true_error(phi, int(neff * tau))
    needed = ar1_needed(phi, target)
    n0 = max(needed // factor, 8)
    results = [control_loop(AR1(phi, seed).extend_to, n0, target, attempts, confidence=confidence) if rule == "new"
               else baseline_loop(AR1(phi, seed).extend_to, n0, target, attempts) for seed in range(seeds)]
    ns = np.array([r.n for r in results])
    return {"rule": rule if rule != "new" or confidence == 0.95 else f"new@{confidence:g}",
            "phi": phi, "neff": neff, "need": needed,
            **summarize(ns, np.array([r.error for r in results]),
                        np.array([ar1_true_error(phi, int(n)) for n in ns]),
                        np.array([r.runs for r in results]), needed, target)}


# --- real: PyQMC VMC on H2 ---------------------------------------------------------------------

SCF = dict(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="cc-pvdz", verbose=0)


def _vmc_chain(job: tuple[str, str, int, int, int, list[int] | None, float | None, int, float]) -> dict:
    """One seed: the control loop on a real VMC continued in place (runs in a worker process)."""
    workdir, name, seed, nconfig, nsteps, lengths, target, attempts, confidence = job
    import h5py
    import pyqmc.api as pyq
    hdf = os.path.join(workdir, f"{name}.hdf5")
    calls = [0]

    def extend_to(n: int) -> np.ndarray:
        calls[0] += 1
        np.random.seed(1000 * seed + calls[0])  # a new stream per continuation
        pyq.VMC(os.path.join(workdir, "mf.chk"), hdf, nconfig=nconfig, nblocks=n, nsteps_per_block=nsteps,
                tstep=0.5)
        with h5py.File(hdf, "r") as f:
            energies = np.real(f["energytotal"][()])
        if energies.size != n:
            raise RuntimeError(f"{hdf}: {energies.size} blocks after asking for {n}")
        return energies

    if target is None:  # the reference run
        return {"energy": extend_to(lengths[0]).tolist()}
    r = control_loop(extend_to, lengths[0], target, attempts, warmup=1, confidence=confidence)
    return {"n": r.n, "error": r.error, "runs": r.runs, "energy": extend_to(r.n).tolist()}


def pooled_sigma1(chains: Sequence[np.ndarray], max_lag: int = 200) -> tuple[float, float]:
    """σ of one block with correlation included (√(var·τ)) from autocovariances pooled over chains."""
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
    return float(np.sqrt(acov[0] / count[0] * tau)), tau


def real(args: argparse.Namespace, workdir: Path) -> dict[str, float | str]:
    from pyscf import gto, scf
    mf = scf.RHF(gto.M(**SCF))
    mf.chkfile = str(workdir / "mf.chk")
    mf.kernel()
    start = time.perf_counter()
    common = (args.nconfig, args.nsteps)
    ref = np.array(_vmc_chain((str(workdir), "reference", 999, *common, [args.real_reference], None, 0, 0.95))["energy"])[1:]
    sigma1_ref, tau_ref = pooled_sigma1([ref])
    nominal = args.real_factor * args.real_n0
    target = sigma1_ref / np.sqrt(nominal)
    print(f"real: reference {args.real_reference} blocks ({time.perf_counter() - start:.0f} s), σ of one block "
          f"{sigma1_ref:.5f}, τ {tau_ref:.2f} blocks; target {target:.6f} (≈ {nominal} blocks)", flush=True)
    jobs = [(str(workdir), f"seed{seed}", seed, *common, [args.real_n0], float(target), args.attempts,
             args.confidence_first) for seed in range(args.real_seeds)]
    with Pool(args.processes) as pool:
        done = pool.map(_vmc_chain, jobs)
    chains = [ref] + [np.array(d["energy"])[1:] for d in done]
    sigma1, tau = pooled_sigma1(chains)
    needed = (sigma1 / target) ** 2 + 1  # + the warm-up block
    ns = np.array([d["n"] for d in done])
    print(f"real: {args.real_seeds} seeds in {time.perf_counter() - start:.0f} s; pooled over "
          f"{sum(c.size for c in chains)} blocks: σ of one block {sigma1:.5f}, τ {tau:.2f}, truly needed "
          f"{needed:.0f} blocks (neff ≈ {needed / tau:.0f})", flush=True)
    return {"rule": f"new@{args.confidence_first:g}", "phi": float("nan"), "neff": round(needed / tau), "need": round(needed),
            **summarize(ns, np.array([d["error"] for d in done]), sigma1 / np.sqrt(ns - 1),
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
    p.add_argument("--factor", type=int, default=10, help="truly needed ÷ blocks of the first run")
    p.add_argument("--attempts", type=int, default=8, help="maximum number of runs")
    p.add_argument("--confidence", type=float, nargs="+", default=[0.95],
                   help="target_confidence of the Reader (the real part uses the first)")
    p.add_argument("--baseline", action="store_true", help="also run the earlier rule (safety 1.1) on the same seeds")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--real", action="store_true", help="also run the PyQMC part")
    p.add_argument("--real-seeds", type=int, default=50)
    p.add_argument("--real-n0", type=int, default=100, help="VMC blocks in the first run (1 warm-up block)")
    p.add_argument("--real-factor", type=int, default=10, help="nominal blocks needed ÷ real-n0")
    p.add_argument("--real-reference", type=int, default=5000, help="blocks of the reference run")
    p.add_argument("--nconfig", type=int, default=50)
    p.add_argument("--nsteps", type=int, default=1, help="VMC steps per block")
    p.add_argument("--workdir", type=Path, help="keep the PyQMC files here (default: a temporary directory)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.confidence_first = args.confidence[0]
    os.environ["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    cases = [("new", phi, neff, args.factor, args.seeds, args.attempts, c)
             for c in args.confidence for phi in args.phi for neff in args.neff]
    if args.baseline:
        cases += [("baseline", phi, neff, args.factor, args.seeds, args.attempts, 0.0)
                  for phi in args.phi for neff in args.neff]
    with Pool(args.processes) as pool:
        rows = pool.map(synthetic_case, cases)
    print(f"synthetic AR(1): first run = need/{args.factor}, {args.seeds} seeds, ≤ {args.attempts} runs "
          f"({time.perf_counter() - start:.0f} s)")
    print_table(rows)
    for neff in args.neff:
        mine = [r for r in rows if r["neff"] == neff and r["rule"] == "new"]
        if not mine:
            continue
        print(f"neff {neff}: worst run/need {max(r['run/need'] for r in mine):.3f} (goal ≤ 1.2), worst est_ok "
              f"{min(r['est_ok'] for r in mine):.2f}, worst true_ok {min(r['true_ok'] for r in mine):.2f} "
              f"(goal ≥ 0.95); floor (1+1.645·s)² with s = √(5/(2·neff)): "
              f"{(1 + 1.645 * np.sqrt(5 / (2 * neff))) ** 2:.3f}")
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
