"""Benchmark: a finished ensemble of N jobs × 2 steps, autogenv2 vs myqueue and signac-flow (issue 8).

For each N (1,000 and 10,000; 100,000 with ``--big``) three equivalent finished trees are built:

* autogenv2: a ``[[scans]]`` plan (scf → vmc) whose status files are written directly as *done*
  (running 2N real calculations would take hours); one real ``autogenv2 run PLAN`` then builds the
  index — timed as the "first full pass";
* myqueue: N folders, a workflow of 2 tasks each (``vmc`` depends on ``scf``), submitted once with
  ``mq workflow`` and then marked done in myqueue's own queue database;
* signac-flow: a project of N jobs, 2 operations (``vmc`` after ``scf``) whose post-conditions
  (``isfile``) are all met.

Then each no-op command is timed as a subprocess (wall time, stdout to /dev/null), all commands
interleaved in every repetition, and medians reported. myqueue and signac-flow are installed from
PyPI into the benchmark's own venv (``--venv``, default ``~/.cache/autogenv2-bench/venv``), never
into the interpreter running this script.

    python benchmarks/scale.py                # 1k and 10k, about 3 minutes on 2 cores
    python benchmarks/scale.py --big          # adds 100k (generation takes several minutes)
    python benchmarks/scale.py --sizes 200 --repeat 3 --skip-others
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
DEFAULT_VENV = Path.home() / ".cache" / "autogenv2-bench" / "venv"

PLAN_HEAD = """root = "runs"
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
nblocks = 20
[[scans]]
id = "r{r}"
scf = { atom = "H 0 0 0; H 0 0 {r}" }
"""

MQ_WORKFLOW = """from myqueue.workflow import run

def workflow():
    with run(shell='true', name='scf'):
        run(shell='true', name='vmc')
"""

FLOW_PROJECT = """from flow import FlowProject


class Project(FlowProject):
    pass


@Project.post.isfile("scf.out")
@Project.operation
def scf(job):
    open(job.fn("scf.out"), "w").close()


@Project.pre.after(scf)
@Project.post.isfile("vmc.out")
@Project.operation
def vmc(job):
    open(job.fn("vmc.out"), "w").close()


if __name__ == "__main__":
    Project().main()
"""

# Submits through myqueue's own code path, to a scheduler that only hands out ids (nothing runs).
MQ_SUBMIT = """import sys
from pathlib import Path
from myqueue.cli import _main

class Recorder:
    number = 0

    def submit(self, task, dry_run=False, verbose=False):
        Recorder.number += 1
        return Recorder.number

import myqueue.queue
myqueue.queue.Queue.scheduler = Recorder()
sys.exit(_main(sys.argv[1:]))
"""

FLOW_INIT = """import sys, signac
project = signac.init_project(sys.argv[1])
for i in range(int(sys.argv[2])):
    job = project.open_job({"r": round(1.0 + i * 1e-5, 5)}).init()
    for name in ("scf.out", "vmc.out"):
        open(job.fn(name), "w").close()
"""


def values(n: int) -> list[str]:
    return [f"{1.0 + i * 1e-5:.5f}" for i in range(n)]


# --- building the three finished trees ------------------------------------------------------------

def build_autogenv2(base: Path, n: int) -> Path:
    """A plan of n jobs × 2 steps whose status files say done (written directly, as a finished run would)."""
    from autogenv2.plan import load_plan
    from autogenv2.planchange import new_element
    from autogenv2.states import State
    from autogenv2.status import Attempt, JobStatus

    base.mkdir(parents=True, exist_ok=True)
    plan_file = base / "plan.toml"
    plan_file.write_text(PLAN_HEAD + "vary = { r = [" + ", ".join(values(n)) + "] }\n")
    plan = load_plan(plan_file)
    for job in plan.jobs:
        status = JobStatus(job_id=job.id, elements=[new_element(step) for step in job.steps])
        for element in status.elements:
            element.state = State.done
            element.result = {"energy": -1.1, "error": 0.001, "blocks": 20}
            element.attempts.append(Attempt(number=1, token="ag2-bench", runner="local", runner_id="1",
                                            phase="finished", exit_code=0, started_at=1.0, ended_at=2.0))
        job_dir = plan.root / job.id
        job_dir.mkdir(parents=True, exist_ok=True)
        status.save(job_dir)
    return plan_file


def build_myqueue(base: Path, n: int, mq: Path) -> list[str]:
    """n folders, each a 2-task workflow, submitted once and then marked done in myqueue's database."""
    base.mkdir(parents=True, exist_ok=True)
    (base / ".myqueue").mkdir(exist_ok=True)
    (base / "wf.py").write_text(MQ_WORKFLOW)
    folders = [f"r{v}" for v in values(n)]
    for folder in folders:
        (base / folder).mkdir(exist_ok=True)
    config = base / ".myqueue" / "config.py"
    config.write_text("config = {'scheduler': 'local'}\n")  # what a workstation user has
    run([str(mq.parent / "python"), "-c", MQ_SUBMIT, "workflow", "wf.py", *folders], base)
    db = sqlite3.connect(base / ".myqueue" / "queue.sqlite3")
    with db:
        db.execute("UPDATE tasks SET state = 'd', trunning = tqueued + 1, tstop = tqueued + 2")
    done = db.execute("SELECT COUNT(*) FROM tasks WHERE state = 'd'").fetchone()[0]
    db.close()
    if done != 2 * n:
        raise RuntimeError(f"myqueue: {done} tasks done, expected {2 * n}")
    return folders


def build_flow(base: Path, n: int, python: Path) -> None:
    base.mkdir(parents=True, exist_ok=True)
    (base / "project.py").write_text(FLOW_PROJECT)
    run([str(python), "-c", FLOW_INIT, str(base), str(n)], base)


def stop_mq_daemons(work: Path) -> None:
    """myqueue forks a daemon (it kicks the queue every 10 minutes); stop the ones our trees started."""
    import signal

    for pidfile in work.glob("*/*/.myqueue/daemon-*.pid"):
        try:
            os.kill(int(pidfile.read_text().split(":")[1]), signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass


def ensure_venv(venv: Path) -> Path:
    """The benchmark's own venv with myqueue, signac and signac-flow (created on first use)."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mq").exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        packages = ["myqueue", "signac", "signac-flow"]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


# --- timing ---------------------------------------------------------------------------------------

def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one subprocess (stdout discarded); raises if it fails."""
    return run_rss(argv, cwd, env, ok)[0]


def run_rss(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
            ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one subprocess.

    The RSS comes from a small launcher's RUSAGE_CHILDREN: a child forked straight from this (large)
    process would count this process's pages in its own peak.
    """
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK, *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, check=False)
    wall = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    last = (err.splitlines() or [""])[-1].split()
    code, peak = (int(last[0]), int(last[1])) if len(last) == 2 else (proc.returncode, 0)
    if code not in ok:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({code}): " + err[-2000:])
    return wall, peak / 1024


PEAK = """import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
sys.stderr.write(f"\\n{code} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
"""


def output(argv: list[str], cwd: Path) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip()


def autogenv2_argv() -> list[str]:
    """The console script beside this interpreter (as a user types it), else ``python -m autogenv2``."""
    script = Path(sys.executable).parent / "autogenv2"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "autogenv2"]


def measure(n: int, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """Build the trees for n jobs and return median seconds per command."""
    ag = autogenv2_argv()
    times: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    plan = build_autogenv2(work / "ag", n)
    print(f"[{n}] autogenv2 tree written in {time.perf_counter() - t0:.1f} s", flush=True)
    root = plan.parent / "runs"
    first = run([*ag, "run", str(plan)], plan.parent)
    commands = {
        "ag run (no-op)": ([*ag, "run", str(plan)], plan.parent),
        "ag status --plain": ([*ag, "status", str(root), "--plain"], plan.parent),
        "ag status --plain --all": ([*ag, "status", str(root), "--plain", "--all"], plan.parent),
        "ag status (table)": ([*ag, "status", str(root)], plan.parent),
        "ag results -f csv": ([*ag, "results", str(root), "-f", "csv"], plan.parent),
    }
    check = output([*ag, "run", str(plan)], plan.parent)
    if "nothing to do" not in check:
        raise RuntimeError(f"autogenv2 run was not a no-op: {check[:500]}")
    if not args.skip_others:
        python = ensure_venv(args.venv)
        mq = python.parent / "mq"
        t0 = time.perf_counter()
        folders = build_myqueue(work / "mq", n, mq)
        build_flow(work / "flow", n, python)
        print(f"[{n}] myqueue and signac-flow trees built in {time.perf_counter() - t0:.1f} s", flush=True)
        commands["mq workflow (re-run)"] = ([str(mq), "workflow", "wf.py", *folders], work / "mq")
        commands["mq ls"] = ([str(mq), "ls"], work / "mq")
        commands["flow run (no-op)"] = ([str(python), "project.py", "run"], work / "flow")
        commands["flow status -d"] = ([str(python), "project.py", "status", "-d"], work / "flow")
        print(f"[{n}] mq workflow says: " + output(commands["mq workflow (re-run)"][0], work / "mq")[-200:])
    for rep in range(args.repeat):
        for name, (argv, cwd) in commands.items():
            times.setdefault(name, []).append(run(argv, cwd))
        print(f"[{n}] repetition {rep + 1}/{args.repeat} done", flush=True)
    medians = {name: statistics.median(seconds) for name, seconds in times.items()}
    medians["ag first full pass"] = first
    return medians


TOY_HEAD = """root = "runs"
[[steps]]
name = "scf"
code = "toy"
method = "mc"
nblocks = 4
seconds_per_block = 0.0
[[steps]]
name = "vmc"
code = "toy"
method = "mc"
nblocks = 4
seconds_per_block = 0.0
[[scans]]
id = "r{r}"
"""


def first_pass(n: int, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """A brand-new plan: autogenv2's first pass (local runner) against myqueue submitting the same tasks.

    autogenv2 creates every job's directory and status, writes the inputs of every first element and
    starts as many as the local runner's throttle allows (2 here); myqueue records the 2n tasks in its
    database and hands them to the id-only scheduler stand-in. Fresh trees in every repetition.
    """
    ag, times = autogenv2_argv(), {}
    plan = work / "first-ag" / "plan.toml"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text(TOY_HEAD + "vary = { r = [" + ", ".join(values(n)) + "] }\n")
    mq = None if args.skip_others else ensure_venv(args.venv).parent / "mq"
    for _ in range(min(args.repeat, 3)):
        shutil.rmtree(plan.parent / "runs", ignore_errors=True)
        wall, rss = run_rss([*ag, "run", str(plan)], plan.parent, ok=(0, 4))
        times.setdefault("ag first pass (new plan)", []).append(wall)
        times.setdefault("ag first pass peak RSS MB", []).append(rss)
        if mq is not None:
            base = work / "first-mq"
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True)
            (base / ".myqueue").mkdir()
            (base / ".myqueue" / "config.py").write_text("config = {'scheduler': 'local'}\n")
            (base / "wf.py").write_text(MQ_WORKFLOW)
            folders = [f"r{v}" for v in values(n)]
            for folder in folders:
                (base / folder).mkdir()
            argv = [str(mq.parent / "python"), "-c", MQ_SUBMIT, "workflow", "wf.py", *folders]
            wall, rss = run_rss(argv, base)
            times.setdefault("mq workflow (new tasks)", []).append(wall)
            times.setdefault("mq workflow peak RSS MB", []).append(rss)
            stop_mq_daemons(work.parent)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


# --- report ---------------------------------------------------------------------------------------

RATIOS = [
    ("mq workflow (new tasks) ÷ autogenv2 first pass", "mq workflow (new tasks)",
     "ag first pass (new plan)", 1),
    ("myqueue re-run ÷ autogenv2 run", "mq workflow (re-run)", "ag run (no-op)", 3),
    ("mq ls ÷ autogenv2 status --plain --all", "mq ls", "ag status --plain --all", None),
    ("mq ls ÷ autogenv2 status (default)", "mq ls", "ag status (table)", 2),
    ("flow run ÷ autogenv2 run", "flow run (no-op)", "ag run (no-op)", None),
    ("flow status -d ÷ autogenv2 status --plain", "flow status -d", "ag status --plain", 5),
    ("flow status -d ÷ autogenv2 status --plain --all", "flow status -d", "ag status --plain --all", 5),
    ("flow status -d ÷ autogenv2 status (table)", "flow status -d", "ag status (table)", None),
]


def report(results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    names = list(dict.fromkeys(name for r in results.values() for name in r))
    width = max(len(n) for n in names + [r[0] for r in RATIOS]) + 2
    print("\nmedian wall time, seconds")
    print(f"{'command':<{width}}" + "".join(f"{f'N={n:,}':>12}" for n in sizes))
    for name in names:
        print(f"{name:<{width}}" + "".join(f"{results[n].get(name, float('nan')):>12.3f}" for n in sizes))
    print("\nratios (goal in brackets)")
    for label, num, den, goal in RATIOS:
        cells = [results[n][num] / results[n][den] if num in results[n] else float("nan") for n in sizes]
        goal_text = f"   [≥ {goal}]" if goal else ""
        print(f"{label:<{width}}" + "".join(f"{c:>12.1f}" for c in cells) + goal_text)
    if len(sizes) > 1:
        print(f"\ngrowth of our times, N={sizes[0]:,} → " + " → ".join(f"{n:,}" for n in sizes[1:]))
        for name in (n for n in names if n.startswith("ag ")):
            steps = [results[b][name] / results[a][name] for a, b in itertools.pairwise(sizes)]
            print(f"{name:<{width}}" + "".join(f"{f'×{s:.1f}':>12}" for s in steps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="add N = 100,000")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--skip-others", action="store_true", help="time autogenv2 only")
    parser.add_argument("--first-only", action="store_true", help="only the first pass over a new plan")
    parser.add_argument("--keep", type=Path, help="build the trees here and keep them")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.sizes + ([100_000] if args.big else [])))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = args.keep or Path(tempfile.mkdtemp(prefix="ag2-scale-"))
    results = {}
    try:
        for n in sizes:
            results[n] = {} if args.first_only else measure(n, work / f"n{n}", args)
            results[n].update(first_pass(n, work / f"n{n}", args))
        report(results)
    finally:
        stop_mq_daemons(work)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
