"""Do real PyQMC optimizations publish calibrated energies? (issue 14; docs/benchmarks.md "Calibration")

H2 at R = 1.4 bohr (cc-pVDZ RHF, Slater-Jastrow, PyQMC OPTIMIZE) run ``--seeds`` times exactly as
autogenv2 runs it: the PyQMC OptimizeWriter's options (``--nconfig`` walkers, ``--iterations``) and
seed rule (seed + iterations done), the OptimizeReader's verdict, and its continuations (+3
iterations, at most 40) until it publishes. Per-iteration parameters are recorded by wrapping
PyQMC's HDF5 writer (the run itself is unchanged).

Truths (each an independent VMC with its own seed; compared within √(σ² + σ_ref²)):

- iteration 0: every seed starts from the same wave function (RHF orbitals, PyQMC's initial
  Jastrow), so one long VMC of it is the truth of every seed's first energy;
- the published energy is PyQMC's energy of the *last iteration's starting* parameters x_{n-1}: the
  truth is a VMC of each seed's x_{n-1} (``truth_prev``). The wave function handed on is x_n, the
  parameters after the last line search: its VMC (``truth_out``) tells how far the published energy
  is from the energy of the wave function it is published with. Since the Writer's final VMC of x_n
  (``final.hdf5``), the element publishes that VMC's energy, so its truth is ``truth_out``;
  ``--final-vmc`` adds that VMC (and the truth) to seeds optimized before it existed.

    python benchmarks/calibration_opt.py --seeds 200 --workdir W --jobs 3   # ~10 min per 100 seeds (load 2–6)
    python benchmarks/calibration_opt.py --seeds 200 --workdir W --report-only

Results of each seed are kept in W/seed_S/result.json; a rerun only does the missing seeds.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from autogenv2 import errorbar
from autogenv2.codes.base import ReadResult
from autogenv2.codes.pyqmc.reader import OptimizeReader, iteration_error_factor
from autogenv2.codes.pyqmc.writer import OptimizeWriter
from autogenv2.states import Verdict
from calibration import print_table, summarise

Params = dict[str, np.ndarray]


def prepare(work: Path) -> Path:
    """The RHF chkfile shared by all seeds."""
    from pyscf import gto, scf

    chk = work / "mf.chk"
    if not chk.exists():
        mol = gto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="cc-pvdz", verbose=0)
        mf = scf.RHF(mol)
        mf.chkfile = str(chk)
        mf.kernel()
    return chk


def vmc_energy(chk: Path, params: Params | None, seed: int, nblocks: int, nconfig: int = 1000,
               warmup: int = 3) -> tuple[float, float]:
    """Energy of a wave function (None: PyQMC's starting one) from a VMC of 10-step blocks (τ 0.5),
    with the error bar autogenv2 publishes for a block series (:func:`errorbar.publish`)."""
    import pyqmc.api as pyq

    mol, mf = pyq.recover_pyscf(str(chk))
    wf, _ = pyq.generate_wf(mol, mf)
    for key, value in (params or {}).items():
        wf.parameters[key] = value
    np.random.seed(seed)
    configs = pyq.initial_guess(mol, nconfig)
    data, _ = pyq.vmc(wf, configs, nblocks=nblocks + warmup, nsteps_per_block=10, tstep=0.5,
                      accumulators={"energy": pyq.EnergyAccumulator(mol)})
    pub = errorbar.publish(np.real(data["energytotal"]), warmup=warmup)
    return float(pub.estimate.mean), float(pub.estimate.error)


def reference(work: Path, chk: Path, nblocks: int) -> dict[str, Any]:
    """The long VMC of the starting wave function (truth of every iteration 0), plus the lag-1
    correlation of its 10-step blocks (PyQMC's per-iteration error assumes none)."""
    path = work / "reference.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    import pyqmc.api as pyq

    mol, mf = pyq.recover_pyscf(str(chk))
    wf, _ = pyq.generate_wf(mol, mf)
    np.random.seed(10**6)
    data, _ = pyq.vmc(wf, pyq.initial_guess(mol, 1000), nblocks=nblocks + 5, nsteps_per_block=10, tstep=0.5,
                      accumulators={"energy": pyq.EnergyAccumulator(mol)})
    blocks = np.real(data["energytotal"])[5:]
    pub = errorbar.publish(blocks)
    d = blocks - blocks.mean()
    ref = {"energy": float(pub.estimate.mean), "error": float(pub.estimate.error), "blocks": int(blocks.size),
           "rho1": float(np.sum(d[1:] * d[:-1]) / np.sum(d * d))}
    path.write_text(json.dumps(ref))
    return ref


def step_correlation(chk: Path, params: Params | None, seed: int, steps: int, nconfig: int = 100,
                     block: int = 10, blocks: int = 10) -> dict[str, float]:
    """How much PyQMC's per-iteration error (``blocks`` blocks of ``block`` steps, plain scatter)
    misses from the correlation of its blocks: from the autocorrelation of the walkers' mean energy
    step by step (τ 0.5), the ratio √(Var(mean of the blocks) / E[s²/blocks]) of a stationary series."""
    import pyqmc.api as pyq

    mol, mf = pyq.recover_pyscf(str(chk))
    wf, _ = pyq.generate_wf(mol, mf)
    for key, value in (params or {}).items():
        wf.parameters[key] = value
    np.random.seed(seed)
    data, _ = pyq.vmc(wf, pyq.initial_guess(mol, nconfig), nblocks=steps + 100, nsteps_per_block=1, tstep=0.5,
                      accumulators={"energy": pyq.EnergyAccumulator(mol)})
    x = np.real(data["energytotal"])[100:]
    x = x - x.mean()
    lags = block * blocks
    acf = np.array([np.mean(x[: x.size - k] * x[k:]) for k in range(lags)]) / np.mean(x * x)
    cov = acf[np.abs(np.subtract.outer(np.arange(lags), np.arange(lags)))]  # steps of one iteration
    mean_block = np.kron(np.eye(blocks), np.full(block, 1.0 / block))  # blocks × steps
    c_blocks = mean_block @ cov @ mean_block.T
    var_mean = c_blocks.mean()  # Var of the mean of the blocks
    scatter = (np.trace(c_blocks) - c_blocks.sum() / blocks) / (blocks - 1)  # E[s²], ddof 1
    rho1 = float(np.mean(np.diag(c_blocks, 1)) / np.mean(np.diag(c_blocks)))
    return {"ratio": float(np.sqrt(var_mean / (scatter / blocks))), "rho1_blocks": rho1,
            "tau_steps": float(1 + 2 * acf[1:].sum()), "steps": int(x.size)}


def _optimize(directory: Path, recorded: list[Params]) -> None:
    """One attempt: the Writer's run.py run in this process, recording the parameters after each iteration
    (its own wrapper of PyQMC's per-iteration write, for the walker groups, wraps this one)."""
    import runpy

    from pyqmc.method import linemin

    original = linemin.opt_hdf

    def recording(hdf_file: Any, data: Any, attr: Any, configs: Any, parameters: Any) -> None:
        original(hdf_file, data, attr, configs, parameters)
        recorded.append({k: np.array(v) for k, v in parameters.items()})

    linemin.opt_hdf = recording
    cwd = os.getcwd()
    try:
        os.chdir(directory)
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path("run.py", run_name="__main__")
    finally:
        os.chdir(cwd)
        linemin.opt_hdf = original


def run_seed(work: Path, chk: Path, seed: int, nconfig: int, iterations: int, truth_blocks: int,
             fixed: bool = False, first: bool = False, skip_out: bool = False) -> dict[str, Any]:
    """Optimize with seed ``seed`` until the Reader publishes (or gives up; ``fixed``: exactly
    ``iterations``, whatever the Reader says), then the truths (``first``: none; only iteration 0
    is tabulated, whose truth is the reference)."""
    directory = work / f"seed_{seed:04d}"
    path = directory / "result.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    warnings.filterwarnings("ignore")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.hdf5"):
        stale.unlink()
    writer = OptimizeWriter(nconfig=nconfig, max_iterations=iterations, seed=seed,
                            final_vmc_blocks=0 if first else 10)
    recorded: list[Params] = []
    start = time.time()
    while True:
        writer.write(directory, {"chkfile": chk})
        if first:  # iteration 0's VMC comes before its line search, which is skipped (a third of the time)
            params = json.loads((directory / "params.json").read_text())
            params["options"]["correlated_sampling"] = False
            (directory / "params.json").write_text(json.dumps(params))
        _optimize(directory, recorded)
        read: ReadResult = OptimizeReader().read(directory, exit_code=0)
        if fixed or read.verdict != Verdict.incomplete or not read.more:
            break
        writer.extend(read)
    n = int(read.results["iterations"])
    before = recorded[n - 2] if n >= 2 else None  # the parameters energy[n-1] was measured with
    result: dict[str, Any] = {"seed": seed, "verdict": read.verdict.value, "results": read.results,
              "seconds": time.time() - start, "stated": _stated(directory)}
    if not first:
        result["truth_prev"] = vmc_energy(chk, before, 10**5 + seed, truth_blocks)
    if not (first or skip_out):
        result["truth_out"] = vmc_energy(chk, recorded[n - 1], 2 * 10**5 + seed, truth_blocks)
    path.write_text(json.dumps(result))
    return result


def final_seed(work: Path, chk: Path, result: dict[str, Any], nconfig: int,
               truth_blocks: int) -> dict[str, Any]:
    """A seed optimized before the Writer's final VMC existed: its run.py, rewritten by today's Writer
    for the iterations it ran, has none left to do and runs only the final VMC of x_n, with the random
    numbers a fresh run would use (they are seeded by seed and iterations); plus x_n's truth."""
    import h5py

    directory = work / f"seed_{result['seed']:04d}"
    if "truth_out" in result and (directory / "final.hdf5").exists():
        return result
    warnings.filterwarnings("ignore")
    OptimizeWriter(nconfig=nconfig, max_iterations=int(result["results"]["iterations"]),
                   seed=result["seed"]).write(directory, {"chkfile": chk})
    _optimize(directory, [])
    with h5py.File(directory / "opt.hdf5", "r") as handle:
        params = {key: np.array(handle["wf"][key]) for key in handle["wf"]}
    if "truth_out" not in result:
        result["truth_out"] = vmc_energy(chk, params, 2 * 10**5 + result["seed"], truth_blocks)
    (directory / "result.json").write_text(json.dumps(result))
    return result


def _stated(directory: Path) -> list[list[float]]:
    import h5py
    with h5py.File(directory / "opt.hdf5", "r") as f:
        energy, error = np.real(f["energy"][()]), np.real(f["energy_error"][()])
        return [[float(e) for e in energy], [float(s) for s in error]]


def _row(name: str, rule: str, energy: list[float], error: list[float], truth: list[float],
         truth_error: list[float], failed: float = 0.0) -> dict[str, object]:
    """calibration.py's row, with the truth's own error added in quadrature."""
    e, t = np.array(energy), np.array(truth)
    sig = np.sqrt(np.array(error) ** 2 + np.array(truth_error) ** 2)
    return summarise(name, rule, e, sig, t, None, failed) | {"stationary": False}


def republish(work: Path, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the Reader publishes *now* for each kept run (its verdict decides nothing here: the
    convergence test works on PyQMC's stated errors, so a changed error bar stops no run earlier)."""
    for r in results:
        read = OptimizeReader().read(work / f"seed_{r['seed']:04d}", exit_code=0)
        r["published"] = {"verdict": read.verdict.value, **read.results}
    return results


def _errors(r: dict[str, Any], rule: str) -> list[float]:
    """Per-iteration errors: PyQMC's, PyQMC's × the Reader's former factor, or the Reader's now."""
    if rule == "published":
        return r["published"]["error_trace"]  # type: ignore[no-any-return]
    factor = iteration_error_factor({}) if rule == "old factor" else 1.0  # 10 blocks, as the Writer
    return [factor * s for s in r["stated"][1]]


def rows(results: list[dict[str, Any]], ref: dict[str, Any]) -> list[dict[str, object]]:
    n = len(results)
    x0, x0_err = [ref["energy"]] * n, [ref["error"]] * n
    full = [r for r in results if "truth_prev" in r]
    prev = [r["truth_prev"][0] for r in full], [r["truth_prev"][1] for r in full]
    table = []
    for rule in ("stated", "old factor", "published"):
        table.append(_row("H2 opt, iteration 0 vs x_0", rule, [r["stated"][0][0] for r in results],
                          [_errors(r, rule)[0] for r in results], x0, x0_err))
    for rule in ("stated", "old factor", "published") if full else ():
        table.append(_row("H2 opt, last iter. vs x_{n-1}", rule, [r["stated"][0][-1] for r in full],
                          [_errors(r, rule)[-1] for r in full], *prev))
    done = [r for r in full if r["published"]["verdict"] == "complete"]
    failed = 1.0 - len(done) / max(len(full), 1)
    final = [r for r in done if r["published"].get("energy_of") and "truth_out" in r]  # the final VMC of x_n
    before = [r for r in done if not r["published"].get("energy_of")]  # the last iteration's energy
    truths = [(before, "truth_prev", "x_{n-1}")]
    if all("truth_out" in r for r in before):
        truths.append((before, "truth_out", "x_n"))
    truths.append((final, "truth_out", "x_n (final VMC)"))
    for chosen, truth, label in truths:
        if chosen:
            table.append(_row(f"H2 opt, Reader vs {label}", "published",
                              [r["published"]["energy"] for r in chosen],
                              [r["published"]["error"] for r in chosen],
                              [r[truth][0] for r in chosen], [r[truth][1] for r in chosen], failed))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--workdir", type=Path, required=True, help="runs and per-seed results are kept here")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel")
    parser.add_argument("--nconfig", type=int, default=100, help="walkers of each optimization")
    parser.add_argument("--iterations", type=int, default=6, help="the Writer's max_iterations")
    parser.add_argument("--truth-blocks", type=int, default=20,
                        help="10-step blocks of 1000 walkers per truth")
    parser.add_argument("--reference-blocks", type=int, default=400)
    parser.add_argument("--fixed", action="store_true", help="exactly --iterations, no stopping rule "
                        "(use another workdir): is the last energy biased without the Reader's selection?")
    parser.add_argument("--only", type=int, nargs="+", help="run these seeds instead of range(--seeds)")
    parser.add_argument("--skip-out", action="store_true", help="no VMC of the output wave function x_n "
                        "(half the truths' cost; no 'Reader vs x_n' row)")
    parser.add_argument("--first-only", action="store_true", help="one iteration per seed, no truths: "
                        "the iteration-0 rows only (use another workdir)")
    parser.add_argument("--report-only", action="store_true", help="only tabulate the seeds already done")
    parser.add_argument("--final-vmc", action="store_true", help="seeds optimized before the Writer's final "
                        "VMC (a --skip-out workdir): run just that VMC of x_n and x_n's truth")
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    chk = prepare(work)
    start = time.time()
    ref = reference(work, chk, args.reference_blocks)
    print(f"reference (starting wave function): {ref['energy']:.6f} ± {ref['error']:.6f} Ha, "
          f"{ref['blocks']} blocks, lag-1 correlation of 10-step blocks {ref['rho1']:.3f}", flush=True)
    if args.report_only or args.final_vmc:
        paths = sorted(work.glob("seed_*/result.json"))[: args.seeds]
        results = [json.loads(p.read_text()) for p in paths]
    if args.final_vmc:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(final_seed, work, chk, r, args.nconfig, args.truth_blocks)
                       for r in results]
            results = [f.result() for f in futures]
    elif not args.report_only:
        with ProcessPoolExecutor(args.jobs) as pool:
            iterations, fixed = (1, True) if args.first_only else (args.iterations, args.fixed)
            futures = [pool.submit(run_seed, work, chk, s, args.nconfig, iterations, args.truth_blocks, fixed,
                                   args.first_only, args.skip_out) for s in args.only or range(args.seeds)]
            results = [f.result() for f in futures]
    iters = np.array([r["results"]["iterations"] for r in results])
    print(f"{len(results)} seeds, {time.time() - start:.0f} s; iterations {iters.min()}–{iters.max()} "
          f"(median {np.median(iters):g}); load average {os.getloadavg()[0]:.1f}")
    bias = np.array([r["stated"][0][-1] - r["truth_prev"][0] for r in results if "truth_prev" in r])
    if bias.size > 1:
        spread = 1e3 * bias.std(ddof=1) / np.sqrt(bias.size)
        print(f"last energy − VMC of its parameters: {1e3 * bias.mean():+.2f} ± {spread:.2f} mHa")
    print_table(rows(republish(work, results), ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
