"""Real PyQMC rows of benchmarks/calibration.py: H2 (R = 1.4 bohr, cc-pVDZ) DMC against a long reference.

One RHF and one optimized Jastrow; a reference DMC of ``ref_blocks`` blocks (its own seed); then
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


def _row(name: str, rule: str, energy: list[float], error: list[float], ref: float, ref_error: float
         ) -> dict[str, object]:
    e, s = np.array(energy), np.array(error)
    dev, sig = np.abs(e - ref), np.sqrt(s**2 + ref_error**2)
    n = e.size
    c1, c2 = float(np.mean(dev <= sig)), float(np.mean(dev <= 2 * sig))
    return {"row": name, "rule": rule, "N": n, "cov1": c1, "se1": np.sqrt(c1 * (1 - c1) / n), "cov2": c2,
            "se2": np.sqrt(c2 * (1 - c2) / n), "ratio": float(np.std(e, ddof=1) / np.mean(s)), "alarm": None,
            "failed": 0.0, "gate": False}


def real_dmc_rows(seeds: int, lengths: list[int], workdir: Path | None, ref_blocks: int = 1200
                  ) -> list[dict[str, object]]:
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
    runs = [_dmc(chk, opt, work / f"dmc{seed}.hdf5", WARMUP + longest, seed) for seed in range(seeds)]
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


QWALK_VMC = """randomseed {{ {a} {b} }}
method {{ vmc nconfig 100 nblock {nblock} nstep 10 }}
include qw.sys
trialfunc {{ slater-jastrow
  wf1 {{ include qw.slater }}
  wf2 {{ include qw.jast2 }}
}}
"""


def _qwalk_vmc(case: Path, work: Path, nblock: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One QWalk VMC of the recorded H2 Slater-Jastrow case (tests/data/qwalk/cases/vmc_h2_sj)."""
    import shutil
    import subprocess

    from autogenv2.codes.qwalk import logparse

    run = work / f"qwalk{seed}"
    if not (run / "qw.vmc.log").exists():
        run.mkdir(parents=True, exist_ok=True)
        for name in ("qw.sys", "qw.slater", "qw.jast2", "qw.orb", "qw.basis"):
            shutil.copy(case / name, run / name)
        (run / "qw.vmc").write_text(QWALK_VMC.format(a=seed + 1, b=7 * seed + 3, nblock=nblock))
        binary = os.environ.get("AUTOGENV2_QWALK") or shutil.which("qwalk") or "/opt/qwalk/bin/qwalk"
        subprocess.run([binary, "qw.vmc"], cwd=run, capture_output=True, check=True, timeout=600)
    series = logparse.parse_log(run / "qw.vmc.log").series["vmc"]
    return series.energy, series.totweight


def real_qwalk_rows(seeds: int, lengths: list[int], workdir: Path | None, ref_blocks: int = 3000
                    ) -> list[dict[str, object]]:
    """QWalk VMC, H2: ``seeds`` runs of max(lengths) blocks, each read as the Reader does (gosling's
    warm-up, then the published error) on its first n blocks, against a ``ref_blocks`` reference."""
    from autogenv2.codes.qwalk.estimates import gosling_warmup

    case = Path(__file__).resolve().parents[1] / "tests" / "data" / "qwalk" / "cases" / "vmc_h2_sj"
    work = workdir or Path(tempfile.mkdtemp(prefix="calibration-qwalk-"))
    start = time.time()
    energy, weights = _qwalk_vmc(case, work, ref_blocks, 100_000)
    ref = errorbar.publish(energy, weights, gosling_warmup(energy))
    print(f"real: QWalk VMC reference {ref_blocks} blocks: {ref.mean:.6f} ± {ref.error:.6f} "
          f"(dof {ref.dof:.0f}) after {time.time() - start:.0f} s", flush=True)
    runs = [_qwalk_vmc(case, work, max(lengths), seed) for seed in range(seeds)]
    print(f"real: {seeds} QWalk runs after {time.time() - start:.0f} s", flush=True)
    table = []
    for blocks in lengths:
        for rule in ("reblock", "published"):
            est = []
            for e, w in runs:
                e, w = e[:blocks], w[:blocks]
                cut = gosling_warmup(e)
                est.append(stats.estimate(e, w, cut) if rule == "reblock" else errorbar.publish(e, w, cut))
            table.append(_row(f"QWalk VMC H2, {blocks} blocks", rule, [x.mean for x in est],
                              [x.error for x in est], ref.mean, ref.error))
    return table
