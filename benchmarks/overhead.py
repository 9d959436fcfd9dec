"""Benchmark: what the manager costs on a real PyQMC run, against running the same scripts by hand.

One H2 job, PySCF RHF → PyQMC VMC (``--nconfig`` walkers, ``--nblocks`` blocks). Each repetition:

1. ``autogenv2 run plan.toml --watch --interval 0.2`` on a fresh root, timed from outside;
2. the job directory it made is copied, every file but the inputs (``params.json``, ``*.py``)
   removed, and ``python scf.py`` then ``python run.py`` run directly in the copy, each timed,
   with the environment autogenv2 gives its programs (one OpenMP/BLAS thread).

Compared: the VMC element's attempt (``ended_at - started_at`` in status.json, i.e. inside the
launch wrapper) against the direct ``run.py`` wall time, and the whole ``run --watch`` against
``scf.py + run.py``. Repetitions alternate the two ways; medians are reported. Goal (issue 8): ≤ 5 %.

    python benchmarks/overhead.py [--repeat 3] [--nconfig 500] [--nblocks 40]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
       "HDF5_USE_FILE_LOCKING": "FALSE",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}

PLAN = """root = "runs"

[[steps]]
name = "scf"
code = "pyscf"
method = "rhf"
basis = "cc-pvdz"
unit = "bohr"
atom = "H 0 0 0; H 0 0 1.4"

[[steps]]
name = "vmc"
code = "pyqmc"
method = "vmc"
nconfig = {nconfig}
nblocks = {nblocks}
warmup = 2
seed = 12

[[jobs]]
id = "h2"
"""


def timed(argv: list[str], cwd: Path, log: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process itself and the children it waited for)."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT)
        _, code, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(code)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} in {cwd} failed with {proc.returncode}" + (f"; see {log}" if log else ""))
    return wall, usage.ru_utime + usage.ru_stime


def managed(base: Path, args: argparse.Namespace) -> dict[str, float]:
    """Run the plan with autogenv2; the whole wall time and each element's attempt time."""
    base.mkdir(parents=True)
    plan = base / "plan.toml"
    plan.write_text(PLAN.format(nconfig=args.nconfig, nblocks=args.nblocks))
    launched = time.time()
    whole, cpu = timed([sys.executable, "-m", "autogenv2", "run", str(plan), "--watch", "--interval",
                        str(args.interval)], base, base / "autogenv2.log")
    status = json.loads((base / "runs" / "h2" / "status.json").read_text())
    attempts = {}
    for element in status["elements"]:
        if element["state"] != "done":
            raise RuntimeError(f"element {element['name']} ended {element['state']}: {element.get('reason')}")
        attempts[element["name"]] = element["attempts"][-1]
    scf, vmc = attempts["scf"], attempts["vmc"]
    times = {"whole": whole, "manager cpu": cpu, "scf": scf["ended_at"] - scf["started_at"],
             "vmc": vmc["ended_at"] - vmc["started_at"], "until scf starts": scf["started_at"] - launched,
             "scf end to vmc start": vmc["started_at"] - scf["ended_at"],
             "vmc end to exit": launched + whole - vmc["ended_at"]}
    return times


def direct(job_dir: Path, copy: Path) -> dict[str, float]:
    """Copy the job's inputs and run scf.py, then run.py, by hand."""
    shutil.copytree(job_dir, copy, ignore=shutil.ignore_patterns("status.json", "*.archived-*"))
    for path in sorted(copy.rglob("*"), reverse=True):
        keep = path.is_dir() or path.name == "params.json" or path.suffix == ".py"
        if not keep:
            path.unlink()
    for marker in copy.rglob(".autogenv2"):
        shutil.rmtree(marker)
    scf, _ = timed([sys.executable, "scf.py"], copy / "scf", copy / "scf" / "direct.log")
    vmc, _ = timed([sys.executable, "run.py"], copy / "vmc", copy / "vmc" / "direct.log")
    if not (copy / "vmc" / "vmc.hdf5").is_file():
        raise RuntimeError("the direct VMC run wrote no vmc.hdf5")
    return {"scf": scf, "vmc": vmc, "whole": scf + vmc}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nconfig", type=int, default=500)
    parser.add_argument("--nblocks", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ag2-overhead-"))
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    try:
        for rep in range(args.repeat):
            ours.append(managed(work / f"m{rep}", args))
            theirs.append(direct(work / f"m{rep}" / "runs" / "h2", work / f"d{rep}"))
            print(f"repetition {rep + 1}: autogenv2 " + ", ".join(f"{k} {v:.2f}" for k, v in ours[-1].items())
                  + " | direct " + ", ".join(f"{k} {v:.2f}" for k, v in theirs[-1].items()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(ours, theirs)
    return 0


def report(ours: list[dict[str, float]], theirs: list[dict[str, float]]) -> None:
    med = {key: statistics.median(r[key] for r in ours) for key in ours[0]}
    dmed = {key: statistics.median(r[key] for r in theirs) for key in theirs[0]}
    print(f"\nmedians over {len(ours)} repetitions, seconds")
    print(f"{'':<34}{'autogenv2':>11}{'direct':>9}{'overhead':>10}")
    rows = [("VMC element (attempt) vs run.py", med["vmc"], dmed["vmc"]),
            ("SCF element (attempt) vs scf.py", med["scf"], dmed["scf"]),
            ("whole run --watch vs scf+run.py", med["whole"], dmed["whole"])]
    for label, a, d in rows:
        print(f"{label:<34}{a:>11.2f}{d:>9.2f}{(a - d) / d:>+10.1%}")
    per_rep = [(o["whole"] - t["whole"]) / t["whole"] for o, t in zip(ours, theirs, strict=True)]
    print("whole-run overhead per repetition: " + ", ".join(f"{x:+.1%}" for x in per_rep))
    print("where the whole run's extra time goes (medians, s): " + ", ".join(
        f"{key} {med[key]:.2f}" for key in ("until scf starts", "scf end to vmc start", "vmc end to exit")))
    print(f"CPU used by the `autogenv2 run --watch` process itself: {med['manager cpu']:.2f} s "
          f"({med['manager cpu'] / med['whole']:.0%} of one core over the run)")


if __name__ == "__main__":
    sys.exit(main())
