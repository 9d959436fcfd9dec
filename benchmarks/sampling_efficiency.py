"""How efficiently does the target-error control loop reach its target? (issue 6, "Done means")

The loop the Manager uses: run N0 blocks; estimate σ with ``stats.estimate``; while σ > target
run ``stats.blocks_needed(σ, target, n, safety)`` more blocks of the *same* series; at most
``--attempts`` runs in all. Reported per setting, over many seeds:

- ``run/need``: blocks run ÷ blocks truly needed (mean and 95th percentile; goal: mean ≤ 1.2);
- ``est_ok``: fraction of seeds whose final *estimated* σ ≤ target;
- ``true_ok``: fraction whose final *true* σ ≤ target (goal for both: ≥ 0.95);
- ``runs``: mean number of runs (each one is a queued job for a real calculation).

Synthetic part: stationary AR(1) series x_t = φ x_{t-1} + √(1-φ²) ε_t, whose true error of the mean
is known exactly, so "truly needed" is exact. Real part (``--real``): PyQMC VMC on H2, extended by
calling VMC again on the same HDF5 file with a larger total ``nblocks``; "truly needed" comes from
one long reference run.

    python benchmarks/sampling_efficiency.py                       # synthetic, ~15 s
    python benchmarks/sampling_efficiency.py --seeds 50 --safety 1.1 --real --real-safety 1.1
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from autogenv2 import stats  # noqa: E402


# --- the loop under test ------------------------------------------------------------------------

@dataclass(frozen=True)
class LoopResult:
    n: int          # blocks run in total
    error: float    # final estimated σ
    runs: int       # runs (jobs) used, including the first


def control_loop(run: Callable[[int], np.ndarray], n0: int, target: float, safety: float,
                 max_runs: int = 6, warmup: int = 0, gate: bool = False) -> LoopResult:
    """``run(n)`` extends the series to ``n`` blocks in total and returns all of it.

    With ``gate``, an estimate with ``reliable=False`` (no reblocking plateau) neither stops the
    loop nor plans the next run: the run is doubled instead.
    """
    n = n0
    for attempt in range(1, max_runs + 1):
        est = stats.estimate(run(n), warmup=warmup)
        trusted = est.reliable or not gate
        if (est.error <= target and trusted) or attempt == max_runs:
            break
        n += n if not trusted else max(1, stats.blocks_needed(est.error, target, est.n, safety))
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


def synthetic(safety: float, phi: float, args: argparse.Namespace) -> dict[str, float]:
    target = ar1_true_error(phi, int(args.factor * args.n0))
    needed = ar1_needed(phi, target)
    results = [control_loop(AR1(phi, seed).extend_to, args.n0, target, safety, args.attempts, gate=args.gate)
               for seed in range(args.seeds)]
    ns = np.array([r.n for r in results])
    return {"safety": safety, "phi": phi, "tau": (1 + phi) / (1 - phi), "need": needed,
            **summarize(ns, np.array([r.error for r in results]),
                        np.array([ar1_true_error(phi, int(n)) for n in ns]),
                        np.array([r.runs for r in results]), needed, target)}


# --- real: PyQMC VMC on H2 ---------------------------------------------------------------------

SCF_SCRIPT = """\
from pyscf import gto, scf
mol = gto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="cc-pvdz", verbose=0)
mf = scf.RHF(mol)
mf.chkfile = "mf.chk"
mf.kernel()
"""
VMC_SCRIPT = """\
import sys
import numpy as np
np.random.seed(int(sys.argv[3]))
import pyqmc.api as pyq
pyq.VMC("mf.chk", sys.argv[1], nconfig={nconfig}, nblocks=int(sys.argv[2]),
        nsteps_per_block={nsteps}, tstep=0.5)
"""


class PyQMCRun:
    """A VMC run in ``workdir``/``name``.hdf5, extended by rerunning with a larger total nblocks."""

    def __init__(self, workdir: Path, name: str, seed: int) -> None:
        self.workdir, self.hdf, self.seed, self.calls = workdir, f"{name}.hdf5", seed, 0

    def extend_to(self, n: int) -> np.ndarray:
        self.calls += 1  # a new seed per call, or a continuation would replay the first call's numbers
        cmd = [sys.executable, "vmc.py", self.hdf, str(n), str(1000 * self.seed + self.calls)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, cwd=self.workdir, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"VMC failed in {self.workdir}: {proc.stderr[-2000:]}")
        with h5py.File(self.workdir / self.hdf, "r") as f:
            energies = np.real(f["energytotal"][()])
        if energies.size != n:
            raise RuntimeError(f"{self.hdf}: {energies.size} blocks after asking for {n}")
        return energies


def real(safeties: Sequence[float], args: argparse.Namespace, workdir: Path) -> list[dict[str, float]]:
    """The control loop on real VMC runs; 'truly needed' from one long reference run."""
    (workdir / "vmc.py").write_text(VMC_SCRIPT.format(nconfig=args.nconfig, nsteps=args.nsteps))
    (workdir / "scf.py").write_text(SCF_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "scf.py"], cwd=workdir, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    ref = stats.estimate(PyQMCRun(workdir, "reference", 999).extend_to(args.real_reference), warmup=1)
    sigma1 = ref.error * np.sqrt(ref.n)  # error of one block, correlation included
    rel = 1.0 / np.sqrt(2 * (ref.n // ref.block_size - 1))  # relative uncertainty of sigma1
    needed = args.real_factor * (args.real_n0 - 1)  # blocks after the warm-up block ...
    target = sigma1 / np.sqrt(needed)
    needed += 1  # ... plus the warm-up block
    print(f"real: reference of {args.real_reference} blocks ({time.perf_counter() - start:.0f} s): "
          f"E = {ref.mean:.5f} ± {ref.error:.5f}, block size {ref.block_size}; σ of one block {sigma1:.5f} "
          f"± {100 * rel:.0f} %, so 'need' = {needed:.0f} ± {200 * rel:.0f} %; target {target:.5f}")
    rows = []
    for safety in safeties:
        results = []
        for seed in range(args.real_seeds):
            t0 = time.perf_counter()
            run = PyQMCRun(workdir, f"s{safety}_seed{seed}", seed)
            results.append(control_loop(run.extend_to, args.real_n0, target, safety, args.attempts, warmup=1,
                                        gate=args.gate))
            r = results[-1]
            print(f"  safety {safety} seed {seed}: {r.n} blocks in {r.runs} runs, σ = {r.error:.5f} "
                  f"({time.perf_counter() - t0:.0f} s)")
        ns = np.array([r.n for r in results])
        rows.append({"safety": safety, "need": needed,
                     **summarize(ns, np.array([r.error for r in results]), sigma1 / np.sqrt(ns - 1),
                                 np.array([r.runs for r in results]), needed, target)})
    return rows


# --- driver ------------------------------------------------------------------------------------

def print_table(rows: Sequence[dict[str, float]]) -> None:
    cols = list(rows[0])
    print("  ".join(f"{c:>8}" for c in cols))
    for row in rows:
        print("  ".join(f"{row[c]:>8.3g}" if isinstance(row[c], float) else f"{row[c]:>8}" for c in cols))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--safety", type=float, nargs="+", default=[1.0, 1.1, 1.2, 1.3, 1.4])
    p.add_argument("--phi", type=float, nargs="+", default=[0.0, 0.5, 0.9, 0.98])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--n0", type=int, default=1000, help="samples in the first run (synthetic)")
    p.add_argument("--factor", type=float, default=10.0, help="truly needed ÷ n0 (synthetic)")
    p.add_argument("--attempts", type=int, default=6, help="maximum number of runs")
    p.add_argument("--gate", action="store_true",
                   help="an unreliable estimate (no plateau) never stops the loop; the run doubles instead")
    p.add_argument("--real", action="store_true", help="also run the PyQMC part (a few minutes)")
    p.add_argument("--real-safety", type=float, nargs="+", default=[1.1, 1.3])
    p.add_argument("--real-seeds", type=int, default=5)
    p.add_argument("--real-n0", type=int, default=20, help="VMC blocks in the first run (1 warm-up block)")
    p.add_argument("--real-factor", type=float, default=4.0, help="truly needed ÷ real-n0")
    p.add_argument("--real-reference", type=int, default=600, help="blocks of the reference run")
    p.add_argument("--nconfig", type=int, default=200)
    p.add_argument("--nsteps", type=int, default=5, help="VMC steps per block")
    p.add_argument("--workdir", type=Path, help="keep the PyQMC files here (default: a temporary directory)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    rows = [synthetic(s, phi, args) for s in args.safety for phi in args.phi]
    print(f"synthetic AR(1): n0 = {args.n0}, need ≈ {args.factor:g}·n0, {args.seeds} seeds, "
          f"≤ {args.attempts} runs, gate {'on' if args.gate else 'off'} "
          f"({time.perf_counter() - start:.1f} s)")
    print_table(rows)
    for s in args.safety:
        mine = [r for r in rows if r["safety"] == s]
        print(f"safety {s}: worst run/need {max(r['run/need'] for r in mine):.3f} (goal ≤ 1.2), worst est_ok "
              f"{min(r['est_ok'] for r in mine):.2f}, worst true_ok {min(r['true_ok'] for r in mine):.2f} "
              f"(goal ≥ 0.95)")
    if args.real:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            real_rows = real(args.real_safety, args, workdir)
        print(f"real PyQMC VMC (H2, nconfig {args.nconfig}, {args.nsteps} steps/block): "
              f"{time.perf_counter() - start:.0f} s in all")
        print_table(real_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
