"""QWalk LINEAR's published energy against the truth of the wave function it hands on, over fresh seeds.

Each seed: one LINEAR element attempt (the LinearWriter's input, with its final VMC) of the recorded
``linear_h2`` case (H2 Slater-Jastrow), read by the QWalkReader; then the truth, a long VMC of that
seed's ``.wfout`` with its own seed (``--truth-blocks`` blocks of 400 walkers × 10 steps). Two rows:

- ``final VMC``: the element's energy and error now (``energy_of``: a VMC of the final parameters);
- ``last iteration``: what it published before, LINEAR's last ``current energy``, which is that of the
  parameters *before* its last step.

Each seed's deviation is compared with √(σᵢ² + σ_truthᵢ²). Usage::

    python benchmarks/calibration_linear.py --seeds 100 --workdir /tmp/callinear
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from autogenv2.codes.qwalk.optimizers import LinearWriter
from autogenv2.codes.qwalk.reader import QWalkReader
from autogenv2.codes.qwalk.writer import QWalkWriter, VMCWriter

CASE = Path(__file__).resolve().parents[1] / "tests" / "data" / "qwalk" / "cases" / "linear_h2"
WAVEFUNCTION = "slater-jastrow\n  wf1 { include qw.slater }\n  wf2 { include qw.jast2_noopt }\n"


def _run(writer: QWalkWriter, run: Path, inputs: dict[str, Path]) -> dict[str, object]:
    """Write, run QWalk and read ``run`` (skipped when a previous call read it)."""
    done = run / "read.json"
    if done.exists():
        return dict(json.loads(done.read_text()))
    run.mkdir(parents=True, exist_ok=True)
    writer.write(run, inputs)
    proc = subprocess.run(writer.command(), cwd=run, capture_output=True, text=True, timeout=3600)
    result = QWalkReader(run_id=writer.qwalk_run).read(run, proc.returncode)
    read = {"verdict": result.verdict.value, **result.results}
    done.write_text(json.dumps(read))
    return read


def one_seed(work: Path, seed: int, iterations: int, truth_blocks: int) -> dict[str, object]:
    inputs = {"qwalk_system": CASE / "qw.sys", "qwalk_slater": CASE / "qw.slater",
              "qwalk_jastrow": CASE / "qw.jast2_noopt", "qwalk_orb": CASE / "qw.orb",
              "qwalk_basis": CASE / "qw.basis"}
    (work / "wf.wf").write_text(WAVEFUNCTION)
    inputs["qwalk_wavefunction"] = work / "wf.wf"
    linear = _run(LinearWriter(iterations=iterations, total_nstep=1024, total_fit=512,
                               randomseed=(seed + 1, 7)), work / f"linear{seed}", inputs)
    wfout = work / f"linear{seed}" / "qw.linear.wfout"
    truth = _run(VMCWriter(nconfig=400, nstep=10, nblock=truth_blocks, randomseed=(seed + 100_003, 11)),
                 work / f"truth{seed}", {**inputs, "wavefunction": wfout})
    last = linear["iterations"][-1]  # type: ignore[index]
    return {"seed": seed, "verdict": linear["verdict"], "energy": linear["energy"], "error": linear["error"],
            "last": last["energy"], "last_error": last["error"], "truth": truth["energy"],
            "truth_error": truth["error"]}


def row(name: str, energy: np.ndarray, error: np.ndarray, truth: np.ndarray, truth_error: np.ndarray) -> str:
    dev, sigma = np.abs(energy - truth), np.hypot(error, truth_error)
    n = energy.size
    c1, c2 = float(np.mean(dev <= sigma)), float(np.mean(dev <= 2 * sigma))
    ratio = float(np.std(energy - truth, ddof=1) / np.mean(error))
    bias = float(np.mean(energy - truth)) * 1e3
    bias_se = float(np.std(energy - truth, ddof=1) / np.sqrt(n)) * 1e3
    se1, se2 = (100 * np.sqrt(c * (1 - c) / n) for c in (c1, c2))
    return (f"| {name} | {n} | {100 * c1:.1f} ± {se1:.1f} | {100 * c2:.1f} ± {se2:.1f} | {ratio:.2f} | "
            f"{bias:+.2f} ± {bias_se:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--truth-blocks", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("calibration-linear"))
    args = parser.parse_args()
    if not (os.environ.get("AUTOGENV2_QWALK") or shutil.which("qwalk")):
        raise SystemExit("needs a QWalk binary: qwalk on PATH or $AUTOGENV2_QWALK")
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    seeds = [one_seed(args.workdir, s, args.iterations, args.truth_blocks)
             for s in range(args.first, args.first + args.seeds)]
    ok = [s for s in seeds if all(s[k] is not None for k in ("energy", "error", "truth", "last_error"))]
    col = {k: np.array([s[k] for s in ok], dtype=float)
           for k in ("energy", "error", "last", "last_error", "truth", "truth_error")}
    print(f"{len(ok)} of {len(seeds)} seeds usable; verdicts "
          f"{ {v: sum(s['verdict'] == v for s in seeds) for v in {s['verdict'] for s in seeds}} }; "
          f"{time.time() - start:.0f} s; load {os.getloadavg()[0]:.1f}")
    print("| row | N | cov 1σ (%) | cov 2σ (%) | std/σ | mean E − truth (mHa) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("final VMC (published now)", col["energy"], col["error"], col["truth"], col["truth_error"]))
    print(row("last iteration (published before)", col["last"], col["last_error"], col["truth"],
              col["truth_error"]))


if __name__ == "__main__":
    main()
