"""Real rows of benchmarks/calibration.py: H2 runs of PyQMC (DMC, VMC with walker groups, OPTIMIZE) and
QWalk (VMC, DMC), each against an independent long run with its own seed.

PyQMC DMC (R = 1.4 bohr, cc-pVDZ): one RHF and one optimized Jastrow; a reference DMC of ``ref_blocks``
blocks (its own seed); then
``seeds`` short DMC runs (τ = 0.02, 200 walkers, the Reader's warm-up of 5 blocks + ``blocks``) with
different seeds. Each short run's energy is compared with the reference within √(σᵢ² + σ_ref²).
Also printed, for the question whether fresh runs scatter more than one run's blocks reveal:

- the same estimators on consecutive ``blocks``-long slices of the reference run after its warm-up;
- the mean over runs of (first 10 blocks after warm-up) − (last half), with its standard error: a
  start-up transient shared by the runs shows as a non-zero difference.
"""
from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from autogenv2 import errorbar, stats
from autogenv2.codes.pyqmc.reader import read_blocks

WARMUP = 5


def _prepare(work: Path) -> tuple[str, str]:
    import pyqmc.api as pyq
    from pyscf import gto, scf

    chk, opt = str(work / "mf.chk"), str(work / "opt.hdf5")
    if not Path(opt).exists():
        mol = gto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="cc-pvdz", verbose=0)
        mf = scf.RHF(mol)
        mf.chkfile = chk
        mf.kernel()
        np.random.seed(1)
        pyq.OPTIMIZE(chk, opt, nconfig=400, max_iterations=8)
    return chk, opt


def _dmc(chk: str, opt: str, path: Path, nblocks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import pyqmc.api as pyq

    if not path.exists():
        np.random.seed(seed)
        pyq.DMC(chk, str(path), load_parameters=opt, nconfig=200, nblocks=nblocks, tstep=0.02)
    energy, weights = read_blocks(path)
    assert weights is not None
    return energy, weights


H2_EXACT = -1.174476
"""H2 at R = 1.4 bohr, Born-Oppenheimer (Kolos-Wolniewicz): nodeless, so DMC is exact but for τ."""


def _row(name: str, rule: str, energy: list[float], error: list[float], ref: float, ref_error: float
         ) -> dict[str, object]:
    e, s = np.array(energy), np.array(error)
    dev, sig = np.abs(e - ref), np.sqrt(s**2 + ref_error**2)
    n = e.size
    c1, c2 = float(np.mean(dev <= sig)), float(np.mean(dev <= 2 * sig))
    return {"row": name, "rule": rule, "N": n, "cov1": c1, "se1": np.sqrt(c1 * (1 - c1) / n), "cov2": c2,
            "se2": np.sqrt(c2 * (1 - c2) / n), "ratio": float(np.std(e, ddof=1) / np.mean(s)), "alarm": None,
            "failed": 0.0, "gate": False}


def real_dmc_rows(seeds: int, lengths: list[int], workdir: Path | None, ref_blocks: int = 1200,
                  first_seed: int = 0) -> list[dict[str, object]]:
    warnings.filterwarnings("ignore")
    work = workdir or Path(tempfile.mkdtemp(prefix="calibration-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    chk, opt = _prepare(work)
    import h5py

    with h5py.File(opt, "r") as handle:
        trace, terr = handle["energy"][()].real, handle["energy_error"][()].real
    judged = errorbar.trace_convergence(trace, terr, 3, 2.0)
    print(f"real: optimization trace {np.round(trace, 4).tolist()} ± {np.round(terr, 4).tolist()}: "
          f"scatter of the last half {judged.scatter:.2f}× the stated errors; converged {judged.converged}")
    energy, weights = _dmc(chk, opt, work / "reference.hdf5", ref_blocks, 10_000)
    ref = errorbar.publish(energy, weights, warmup=50)
    print(f"real: reference {ref_blocks} blocks (warm-up 50): {ref.mean:.6f} ± {ref.error:.6f} "
          f"(reblocked {ref.reblocked:.6f}, dof {ref.dof:.0f}) after {time.time() - start:.0f} s", flush=True)
    longest = max(lengths)
    runs = [_dmc(chk, opt, work / f"dmc{seed}.hdf5", WARMUP + longest, seed)
            for seed in range(first_seed, first_seed + seeds)]
    print(f"real: {seeds} runs of {WARMUP + longest} blocks after {time.time() - start:.0f} s", flush=True)
    table = []
    for blocks in lengths:
        cut = [(e[:WARMUP + blocks], w[:WARMUP + blocks]) for e, w in runs]
        for rule in ("reblock", "published"):
            est = [stats.estimate(e, w, WARMUP) if rule == "reblock" else errorbar.publish(e, w, WARMUP)
                   for e, w in cut]
            table.append(_row(f"PyQMC DMC H2, {blocks} blocks", rule, [x.mean for x in est],
                              [x.error for x in est], ref.mean, ref.error))
        starts = range(50, energy.size - blocks + 1, blocks)
        slices = [(energy[i:i + blocks], weights[i:i + blocks]) for i in starts]
        for rule in ("reblock", "published"):
            est = [stats.estimate(e, w) if rule == "reblock" else errorbar.publish(e, w) for e, w in slices]
            table.append(_row(f"slices of the reference, {blocks}", rule, [x.mean for x in est],
                              [x.error for x in est], ref.mean, 0.0))
    early = np.array([e[WARMUP:WARMUP + 10].mean() - e[WARMUP + longest // 2:].mean() for e, _ in runs])
    print(f"real: first 10 blocks after warm-up − last half, mean over {seeds} runs: "
          f"{early.mean():+.6f} ± {early.std(ddof=1) / np.sqrt(seeds):.6f} Ha", flush=True)
    late = np.array([e[WARMUP:].mean() for e, _ in runs])
    print(f"real: run means scatter {late.std(ddof=1):.6f}; first-block energy "
          f"{np.mean([e[0] for e, _ in runs]):.5f}, block 5 {np.mean([e[5] for e, _ in runs]):.5f}, "
          f"blocks 20+ {np.mean([e[20:].mean() for e, _ in runs]):.5f}", flush=True)
    return table


def real_dmc_population_rows(seeds: int, lengths: list[int], workdir: Path | None, groups: int = 8,
                             first_seed: int = 1000) -> list[dict[str, object]]:
    """PyQMC DMC of the same H2 Jastrow as :func:`real_dmc_rows`, written by DMCWriter with ``groups``
    populations each branched on its own (200 walkers, τ = 0.02) and read as MCReader does (warm-up 5,
    :func:`sampling.publish` with the populations) on its first 5 + n blocks, for n in ``lengths``.
    Truth: the exact energy (H2 is nodeless; the τ = 0.02 error measured +0.06 ± 0.15 mHa over 136
    single-population runs). Also prints the mean deviation: a population-size bias would show there."""
    from autogenv2.codes.pyqmc.reader import POPULATION_SHIFT_LIMIT, read_walker_groups
    from autogenv2.codes.pyqmc.writer import DMCWriter
    from autogenv2.sampling import WalkerGroups, publish

    warnings.filterwarnings("ignore")
    work = (workdir or Path(tempfile.mkdtemp(prefix="calibration-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    chk, opt = _prepare(work)
    inputs, start, longest = {"chkfile": Path(chk), "wavefunction": Path(opt)}, time.time(), max(lengths)
    runs = []
    for seed in range(first_seed, first_seed + seeds):
        run = work / f"dmc_g{groups}_{seed}"
        run.mkdir(exist_ok=True)
        DMCWriter(nconfig=200, nblocks=WARMUP + longest, seed=seed, walker_groups=groups).write(run, inputs)
        if not (run / "dmc.hdf5").exists():
            _run_script(run)
        energy, weights = read_blocks(run / "dmc.hdf5")
        found = read_walker_groups(run / "dmc.hdf5", 200, energy.size)
        assert found is not None and weights is not None
        runs.append((energy, weights, found))
    print(f"real: {seeds} PyQMC DMC runs of {groups} populations after {time.time() - start:.0f} s",
          flush=True)
    table = []
    for blocks in lengths:
        n = WARMUP + blocks
        pubs = [publish(e[:n], w[:n], WARMUP, WalkerGroups(g.means[:n], g.sizes, True)) for e, w, g in runs]
        energy = [p.estimate.mean for p in pubs if p is not None]
        error = [p.estimate.error for p in pubs if p is not None]
        dev = np.array(energy) - H2_EXACT
        shift = np.array([p.quality["population_shift"] / p.estimate.error for p in pubs if p is not None])
        print(f"real: {groups} populations, {blocks} blocks: mean E − exact {dev.mean() * 1e6:+.0f} ± "
              f"{dev.std(ddof=1) / np.sqrt(dev.size) * 1e6:.0f} µHa; flagged "
              f"{sum(not p.quality['reliable'] for p in pubs if p is not None)} of {len(pubs)}; "
              f"population_shift/σ median {np.median(shift):+.3f}, largest {np.abs(shift).max():.3f}, "
              f"over {POPULATION_SHIFT_LIMIT}: {np.sum(np.abs(shift) > POPULATION_SHIFT_LIMIT)}", flush=True)
        table.append(_row(f"PyQMC DMC H2, {blocks} blocks, {groups} populations", "published", energy, error,
                          H2_EXACT, 0.0))
    return table


QWALK_VMC = """randomseed {{ {a} {b} }}
method {{ vmc nconfig 100 nblock {nblock} nstep 10 }}
include qw.sys
trialfunc {{ slater-jastrow
  wf1 {{ include qw.slater }}
  wf2 {{ include qw.jast2 }}
}}
"""


QWALK_DMC = """randomseed {{ {a} {b} }}
method {{ dmc timestep 0.02 nblock {nblock} nconfig 128 }}
include qw.sys
trialfunc {{ include qw.linear.wfout }}
"""
QWALK_FILES = {"vmc": ("qw.sys", "qw.slater", "qw.jast2", "qw.orb", "qw.basis"),
               "dmc": ("qw.sys", "qw.linear.wfout", "qw.orb")}


def _qwalk_run(case: Path, work: Path, nblock: int, seed: int, kind: str = "vmc"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One fresh QWalk run of a recorded H2 case: VMC of vmc_h2_sj, or DMC (τ = 0.02, 128 walkers, 50
    steps a block, walkers generated from the trial function) of dmc_h2's optimized wave function."""
    import shutil
    import subprocess

    from autogenv2.codes.qwalk import logparse

    run = work / (f"qwalk{seed}" if kind == "vmc" else f"qwalk_{kind}{seed}")
    if not (run / f"qw.{kind}.log").exists():
        run.mkdir(parents=True, exist_ok=True)
        for name in QWALK_FILES[kind]:
            shutil.copy(case / name, run / name)
        text = QWALK_VMC if kind == "vmc" else QWALK_DMC
        (run / f"qw.{kind}").write_text(text.format(a=seed + 1, b=7 * seed + 3, nblock=nblock))
        binary = os.environ.get("AUTOGENV2_QWALK") or shutil.which("qwalk") or "/opt/qwalk/bin/qwalk"
        subprocess.run([binary, f"qw.{kind}"], cwd=run, capture_output=True, check=True, timeout=3600)
    series = logparse.parse_log(run / f"qw.{kind}.log").series[kind]
    return series.energy, series.totweight, series.energyvar


def real_qwalk_rows(seeds: int, lengths: list[int], workdir: Path | None, ref_blocks: int = 3000,
                    kind: str = "vmc", first_seed: int = 0) -> list[dict[str, object]]:
    """QWalk VMC (or DMC), H2: ``seeds`` runs of max(lengths) blocks, each read as the Reader does
    (gosling's warm-up, for DMC at least 10 au; then the published error) on its first n blocks, against
    a ``ref_blocks`` reference with its own seed (VMC) or the exact energy (DMC: each DMC run carries an
    offset of its own that one long run cannot average out, docs/benchmarks.md "QWalk DMC: the warm-up")."""
    from autogenv2.codes.qwalk.estimates import dmc_warmup, gosling_warmup

    name = "vmc_h2_sj" if kind == "vmc" else "dmc_h2"
    case = Path(__file__).resolve().parents[1] / "tests" / "data" / "qwalk" / "cases" / name
    work = workdir or Path(tempfile.mkdtemp(prefix="calibration-qwalk-"))
    start = time.time()
    energy, weights, var = _qwalk_run(case, work, ref_blocks, 100_000, kind)
    skip = max(gosling_warmup(energy), 50 if kind == "dmc" else 0)
    ref = errorbar.publish(energy, weights, skip, sample_variance=var)
    print(f"real: QWalk {kind.upper()} reference {ref_blocks} blocks: {ref.mean:.6f} ± {ref.error:.6f} "
          f"(dof {ref.dof:.0f}) after {time.time() - start:.0f} s", flush=True)
    runs = [_qwalk_run(case, work, max(lengths), seed, kind)
            for seed in range(first_seed, first_seed + seeds)]
    print(f"real: {seeds} QWalk runs after {time.time() - start:.0f} s", flush=True)
    truth = (H2_EXACT, 0.0) if kind == "dmc" else (ref.mean, ref.error)
    rules = ("reblock", "gosling cut", "published") if kind == "dmc" else ("reblock", "published")
    table = []
    for blocks in lengths:
        floor = dmc_warmup(0.02, None, blocks) if kind == "dmc" else 0  # as verdict.method_results
        for rule in rules:
            est = []
            for e, w, v in runs:
                e, w, v = e[:blocks], w[:blocks], None if v is None else v[:blocks]
                gosling = gosling_warmup(e)
                cut = gosling if rule == "gosling cut" else max(gosling, floor)
                est.append(stats.estimate(e, w, gosling) if rule == "reblock"
                           else errorbar.publish(e, w, cut, sample_variance=v))
            table.append(_row(f"QWalk {kind.upper()} H2, {blocks} blocks", rule, [x.mean for x in est],
                              [x.error for x in est], *truth))
    return table


def _run_script(directory: Path) -> None:
    """Run a Writer's run.py in this process (as `python run.py` in ``directory`` would)."""
    import runpy

    here = os.getcwd()
    os.chdir(directory)
    try:
        runpy.run_path("run.py", run_name="__main__")
    finally:
        os.chdir(here)


def real_vmc_rows(seeds: int, nblocks: int, workdir: Path, nconfig: int = 1000, groups: int = 32,
                  ref_blocks: int = 400) -> list[dict[str, object]]:
    """PyQMC VMC of the H2 Jastrow of :func:`real_dmc_rows`, written by VMCWriter (``groups`` walker
    groups) and read by MCReader (warm-up 5), ``seeds`` runs against a ``ref_blocks`` VMC (own seed)."""
    from autogenv2.codes.pyqmc.reader import MCReader
    from autogenv2.codes.pyqmc.writer import VMCWriter

    warnings.filterwarnings("ignore")
    work = workdir.resolve()
    chk, opt = _prepare(work)
    inputs = {"chkfile": Path(chk), "wavefunction": Path(opt)}
    reader, start = MCReader(), time.time()
    rows: dict[str, tuple[list[float], list[float]]] = {"published": ([], []), "reblock": ([], [])}
    ref = None
    for seed in [100_000] + list(range(seeds)):
        run = work / f"vmc{groups}_{nconfig}_{seed}"
        run.mkdir(exist_ok=True)
        blocks = ref_blocks if seed == 100_000 else nblocks
        VMCWriter(nconfig=nconfig, nblocks=blocks, seed=seed, walker_groups=groups).write(run, inputs)
        if not (run / "vmc.hdf5").exists():
            _run_script(run)
        res = reader.read(run, 0).results
        if ref is None:
            ref = (float(res["energy"]), float(res["error"]))
            print(f"real: PyQMC VMC reference {blocks} blocks: {ref[0]:.6f} ± {ref[1]:.6f} "
                  f"after {time.time() - start:.0f} s", flush=True)
            continue
        rows["published"][0].append(float(res["energy"]))
        rows["published"][1].append(float(res["error"]))
        rows["reblock"][0].append(float(res["energy"]))
        rows["reblock"][1].append(float(res["error_reblocked"]))
    assert ref is not None
    print(f"real: {seeds} PyQMC VMC runs after {time.time() - start:.0f} s", flush=True)
    name = f"PyQMC VMC H2, {nblocks} blocks, {groups} groups"
    return [_row(name, rule, e, s, *ref) for rule, (e, s) in (("reblock", rows["reblock"]),
                                                                ("published", rows["published"]))]


def real_optimize_rows(seeds: int, workdir: Path, iterations: int = 10, nconfig: int = 100,
                       ref_config: int = 400, ref_blocks: int = 40) -> list[dict[str, object]]:
    """PyQMC OPTIMIZE of the H2 Jastrow from its default start, ``seeds`` runs of ``iterations``, read
    as OptimizeReader does at that look. The last energy was sampled on the parameters before the last
    update: those are saved after ``iterations − 1`` (the run is continued from them, as a restart is),
    and their energy from a VMC of ``ref_config`` walkers × ``ref_blocks`` blocks (warm-up 5) is the truth."""
    import shutil

    import h5py
    import pyqmc.api as pyq

    warnings.filterwarnings("ignore")
    work = workdir.resolve()
    chk, _ = _prepare(work)
    start = time.time()
    out: dict[str, list[list[float]]] = {"stated": [[], [], []], "published": [[], [], []]}
    for seed in range(seeds):
        path, before = work / f"opt{seed}.hdf5", work / f"opt{seed}_before.hdf5"
        if not path.exists():
            np.random.seed(seed)
            pyq.OPTIMIZE(chk, str(before), nconfig=nconfig, max_iterations=iterations - 1)
            shutil.copy(before, path)
            np.random.seed(seed + 1000)
            pyq.OPTIMIZE(chk, str(path), nconfig=nconfig, max_iterations=iterations)
        truth = work / f"opt{seed}_vmc.hdf5"
        if not truth.exists():
            np.random.seed(seed + 2000)
            pyq.VMC(chk, str(truth), load_parameters=str(before), nconfig=ref_config, nblocks=ref_blocks)
        ref = errorbar.publish(read_blocks(truth)[0], None, WARMUP)
        with h5py.File(path, "r") as handle:
            energy, error = handle["energy"][()].real, handle["energy_error"][()].real
        judged = errorbar.trace_convergence(energy, error, 3, 2.0)
        for rule, err in (("stated", error[-1]), ("published", judged.error)):
            if rule == "stated" or judged.converged:
                for column, value in zip(out[rule], (energy[-1] - ref.mean, err, ref.error), strict=True):
                    column.append(float(value))
    print(f"real: {seeds} optimizations of {iterations} iterations after {time.time() - start:.0f} s; "
          f"{len(out['published'][0])} converged at that look", flush=True)
    rows = []
    for rule, (dev, err, ref_err) in out.items():
        d, s, r = np.array(dev), np.array(err), np.array(ref_err)
        name = f"PyQMC OPTIMIZE H2, {iterations} iter."
        row = _row(name, rule, list(d), list(np.sqrt(s**2 + r**2)), 0.0, 0.0)
        row["ratio"] = float(np.std(d, ddof=1) / np.mean(s))
        rows.append(row)
    return rows
