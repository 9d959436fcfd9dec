"""Benchmark: how many real ``squeue`` calls one reconcile pass makes with 1, 10 and 100 queued jobs.

Each plan has N jobs of one toy step on a SLURM machine profile, submitted held
(``resources = { extra = ["--hold"] }``) so they stay PENDING. ``squeue`` is reached through a
wrapper earlier on PATH that appends one line per invocation to a log, then ``exec``s the real
``squeue``. After the submitting pass, ``--passes`` more passes (``autogenv2 run PLAN``) are made
and the log lines each added are counted. Goal (issue 8): exactly 1 per pass, whatever N.
Every job is cancelled at the end (``scancel`` of the ids the status files record).

    python benchmarks/scheduler_calls.py [--sizes 1 10 100] [--passes 3] [--partition debug]

Skips (exit 0, with a message) when ``squeue`` is missing or the controller does not answer.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

WRAPPER = """#!/bin/sh
echo "$(date +%s.%N) $*" >> {log}
exec {real} "$@"
"""


def slurm_answers() -> str | None:
    """The real squeue if the controller answers, else None."""
    real = shutil.which("squeue")
    if real is None:
        return None
    try:
        proc = subprocess.run([real, "--me", "--noheader"], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    return real if proc.returncode == 0 else None


def write_plan(base: Path, n: int, partition: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    (base / "machines.toml").write_text(
        f'[machines.cluster]\nkind = "slurm"\npartition = "{partition}"\nmax_queued = {max(n, 1) + 10}\n')
    lines = ['root = "runs"', 'machines = "machines.toml"', "[[steps]]", 'name = "mc"', 'code = "toy"',
             'method = "mc"', 'runner = "cluster"', "nblocks = 5",
             'resources = { walltime = "00:05:00", extra = ["--hold"] }']
    for i in range(n):
        lines += ["[[jobs]]", f'id = "j{i:03d}"']
    plan = base / "plan.toml"
    plan.write_text("\n".join(lines) + "\n")
    return plan


def runner_ids(root: Path) -> list[str]:
    """SLURM job ids recorded in every status.json under root."""
    ids = []
    for path in root.rglob("status.json"):
        data = json.loads(path.read_text())
        ids += [a["runner_id"] for e in data.get("elements", []) for a in e.get("attempts", [])
                if a.get("runner_id")]
    return ids


def count_passes(plan: Path, env: dict[str, str], log: Path, passes: int) -> tuple[int, list[int], int]:
    """(squeue calls in the submitting pass, calls in each later pass, jobs pending in SLURM)."""
    argv = [sys.executable, "-m", "autogenv2", "run", str(plan)]
    counts = []
    for _ in range(passes + 1):
        before = len(log.read_text().splitlines()) if log.exists() else 0
        proc = subprocess.run(argv, cwd=plan.parent, env=env, capture_output=True, text=True)
        if proc.returncode not in (0, 4):  # 4: elements still running (the jobs are held in SLURM)
            raise RuntimeError(f"autogenv2 run failed: {proc.stdout[-1000:]}{proc.stderr[-1000:]}")
        counts.append(len(log.read_text().splitlines()) - before if log.exists() else 0)
    ids = set(runner_ids(plan.parent / "runs"))
    queue = subprocess.run(["squeue", "--me", "--noheader", "--format=%i %T"], capture_output=True, text=True)
    pending = sum(1 for line in queue.stdout.splitlines() if line.split()[0] in ids and "PENDING" in line)
    return counts[0], counts[1:], pending


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--passes", type=int, default=3, help="passes after the submitting one")
    parser.add_argument("--partition", default="debug")
    args = parser.parse_args(argv)
    real = slurm_answers()
    if real is None:
        print("skipped: squeue is not on PATH or the SLURM controller does not answer")
        return 0
    work = Path(tempfile.mkdtemp(prefix="ag2-squeue-"))
    bin_dir, log = work / "bin", work / "squeue.log"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(WRAPPER.format(log=log, real=real))
    (bin_dir / "squeue").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    rows = []
    try:
        for n in args.sizes:
            plan = write_plan(work / f"n{n}", n, args.partition)
            start = time.perf_counter()
            first, later, pending = count_passes(plan, env, log, args.passes)
            rows.append((n, first, later, pending, time.perf_counter() - start))
    finally:
        ids = runner_ids(work)
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=120)
        print(f"cancelled {len(ids)} SLURM jobs")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'queued jobs':>11} {'pending':>8} {'squeue (submit pass)':>21} "
          f"{'squeue per later pass':>22} {'s':>6}")
    for n, first, later, pending, seconds in rows:
        print(f"{n:>11} {pending:>8} {first:>21} {' '.join(map(str, later)):>22} {seconds:>6.1f}")
    ok = all(all(c == 1 for c in later) for _, _, later, _, _ in rows)
    print(f"\ngoal (exactly 1 squeue per pass with jobs in flight): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
