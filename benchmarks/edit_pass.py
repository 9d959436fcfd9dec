"""Benchmark: the 1 %-edit pass (issue 19): one more step for 1 % of finished jobs, autogenv2 vs myqueue.

N toy jobs × 2 steps (scf → vmc), all finished, as benchmarks/scale.py builds them; then the plan gives
1 % of the jobs (every hundredth) a third step ``dmc`` and the next ``autogenv2 run PLAN`` is timed
(local runner, toy code: it adds the element to those jobs, writes the first inputs and starts two).
myqueue does the equivalent: its workflow script gives the same 1 % of folders a third task and
``mq workflow`` runs again over all N folders (submitting to scale.py's id-only scheduler stand-in).

Repetitions reuse one tree per tool: repetition k edits the k-th hundredth (jobs i with i % 100 == k);
between repetitions the new elements (tasks) are marked done directly and, for autogenv2, one untimed
pass brings its index up to date. ``--before SRC`` also times another source tree (e.g. main's
``src``) on the same autogenv2 tree, interleaved; an untimed pass with that tree precedes each of its
timed passes (the two trees may keep different index schemas). Peak RSS through scale.run_rss.

    python benchmarks/edit_pass.py --sizes 10000 --repeat 3 --before /work/main/src
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (benchmarks/scale.py: tree builders, run_rss, the myqueue venv)

STEP = 'name = "{name}"\ncode = "toy"\nmethod = "mc"\nnblocks = 4\nseconds_per_block = 0.0\n'

MQ_EDIT_WORKFLOW = """from pathlib import Path
from myqueue.workflow import run

EDITED = set(Path({edited!r}).read_text().split())


def workflow():
    with run(shell='true', name='scf'):
        vmc = run(shell='true', name='vmc')
    if Path.cwd().name in EDITED:
        run(shell='true', name='dmc', deps=[vmc])
"""


MQ_SUBMIT = scale.MQ_SUBMIT.replace("number = 0", "number = int(__import__('os').environ['MQ_FIRST_ID'])")
"""scale.py's id-only scheduler stand-in, numbering on from the tasks already in the queue."""


def hundredth(n: int, k: int) -> list[int]:
    """The jobs repetition k edits: every hundredth, starting at k."""
    return list(range(k % 100, n, 100))


def plan_text(n: int, edited: set[int]) -> str:
    """The toy plan of scale.py; the jobs in ``edited`` have their own steps, with a third (dmc)."""
    vals = scale.values(n)
    kept = ", ".join(v for i, v in enumerate(vals) if i not in edited)
    text = scale.TOY_HEAD + "vary = { r = [" + kept + "] }\n"
    if edited:
        changed = ", ".join(vals[i] for i in sorted(edited))
        text += '[[scans]]\nid = "r{r}"\nvary = { r = [' + changed + "] }\n"
        text += "".join("[[scans.steps]]\n" + STEP.format(name=name) for name in ("scf", "vmc", "dmc"))
    return text


def build_ag(base: Path, n: int) -> Path:
    """The finished toy tree: status files written as done (scale.build_autogenv2 with the toy plan)."""
    from autogenv2.plan import load_plan
    from autogenv2.planchange import new_element
    from autogenv2.status import JobStatus

    base.mkdir(parents=True, exist_ok=True)
    plan_file = base / "plan.toml"
    plan_file.write_text(plan_text(n, set()))
    plan = load_plan(plan_file)
    for job in plan.jobs:
        status = JobStatus(job_id=job.id, elements=[new_element(step) for step in job.steps])
        for element in status.elements:
            mark_done(element)
        job_dir = plan.root / job.id
        job_dir.mkdir(parents=True, exist_ok=True)
        status.save(job_dir, durable=False)
    return plan_file


def mark_done(element: object) -> None:
    from autogenv2.states import State
    from autogenv2.status import Attempt, ElementStatus

    assert isinstance(element, ElementStatus)
    element.state = State.done
    element.result = {"energy": -1.1, "error": 0.001, "blocks": 4}
    element.attempts = [Attempt(number=1, token="ag2-bench", runner="local", runner_id="1",
                                phase="finished", exit_code=0, started_at=1.0, ended_at=2.0)]


def finish_ag(plan_file: Path, n: int, k: int) -> None:
    """Mark the dmc elements of hundredth k done, checking every edited job got one."""
    from autogenv2.status import JobStatus

    ids = [f"r{float(scale.values(n)[i])}" for i in hundredth(n, k)]
    time.sleep(1.0)  # the two toy runs the pass started end within a second
    for job_id in ids:
        status = JobStatus.load(plan_file.parent / "runs" / job_id)
        assert status is not None and [e.name for e in status.elements][-1] == "dmc", job_id
        mark_done(status.elements[-1])
        status.save(plan_file.parent / "runs" / job_id)


def ag_rep(plan_file: Path, n: int, k: int, src: str) -> tuple[float, float]:
    """One timed 1 %-edit pass of the autogenv2 in ``src`` (after an untimed pass that settles its index)."""
    env = {**os.environ, "PYTHONPATH": src}
    argv = [*scale.autogenv2_argv(), "run", str(plan_file)]
    scale.run(argv, plan_file.parent, env=env)
    plan_file.write_text(plan_text(n, {i for j in range(k + 1) for i in hundredth(n, j)}))
    wall, rss = scale.run_rss(argv, plan_file.parent, env=env, ok=(0, 4))
    finish_ag(plan_file, n, k)
    return wall, rss


def mq_rep(base: Path, folders: list[str], n: int, k: int, mq: Path) -> tuple[float, float]:
    """One timed ``mq workflow`` after hundredth k of the folders got a third task."""
    edited = base / "edited.txt"
    edited.write_text("\n".join(folders[i] for j in range(k + 1) for i in hundredth(n, j)) + "\n")
    (base / "wf-edit.py").write_text(MQ_EDIT_WORKFLOW.format(edited=str(edited)))
    db = sqlite3.connect(base / ".myqueue" / "queue.sqlite3")
    first = db.execute("SELECT MAX(id) FROM tasks").fetchone()[0]
    argv = [str(mq.parent / "python"), "-c", MQ_SUBMIT, "workflow", "wf-edit.py", *folders]
    wall, rss = scale.run_rss(argv, base, env={**os.environ, "MQ_FIRST_ID": str(first)})
    with db:
        db.execute("UPDATE tasks SET state = 'd', trunning = tqueued + 1, tstop = tqueued + 2 "
                   "WHERE state != 'd'")
    tasks = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
    db.close()
    if tasks != 2 * n + len(hundredth(n, 0)) * (k + 1) and n % 100 == 0:
        raise RuntimeError(f"myqueue: {tasks} tasks after edit {k}")
    return wall, rss


def measure(n: int, work: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    t0 = time.perf_counter()
    plan_file = build_ag(work / "ag", n)
    print(f"[{n}] autogenv2 tree written in {time.perf_counter() - t0:.1f} s", flush=True)
    mq = scale.ensure_venv(args.venv).parent / "mq"
    t0 = time.perf_counter()
    folders = scale.build_myqueue(work / "mq", n, mq)
    print(f"[{n}] myqueue tree built in {time.perf_counter() - t0:.1f} s", flush=True)
    variants = {"after": str(scale.REPO / "src")}
    if args.before:
        variants["before"] = str(args.before)
    times: dict[str, list[float]] = {}
    k_ag = 0
    for rep in range(args.repeat):
        load = os.getloadavg()[0]
        for name, src in variants.items():
            wall, rss = ag_rep(plan_file, n, k_ag, src)
            k_ag += 1
            times.setdefault(f"ag {name} s", []).append(wall)
            times.setdefault(f"ag {name} MB", []).append(rss)
            print(f"[{n}] {name}: {wall:.2f} s, {rss:.0f} MB", flush=True)
        wall, rss = mq_rep(work / "mq", folders, n, rep, mq)
        times.setdefault("mq s", []).append(wall)
        times.setdefault("mq MB", []).append(rss)
        times.setdefault("load", []).extend([load, os.getloadavg()[0]])
        print(f"[{n}] myqueue: {wall:.2f} s, {rss:.0f} MB; load {load:.2f}", flush=True)
        scale.stop_mq_daemons(work.parent)
    return times


def report(results: dict[int, dict[str, list[float]]]) -> None:
    for n, times in results.items():
        print(f"\nN = {n:,}: medians (ranges) of {len(times['mq s'])} interleaved repetitions, "
              f"load {min(times['load']):.2f}-{max(times['load']):.2f}")
        for name, values in times.items():
            if name != "load":
                print(f"  {name:<16} {statistics.median(values):9.2f}  ({min(values):.2f}-{max(values):.2f})")
        for name in ("after", "before"):
            if f"ag {name} s" in times:
                ratio = statistics.median(times["mq s"]) / statistics.median(times[f"ag {name} s"])
                print(f"  myqueue ÷ autogenv2 {name}: {ratio:.2f} (goal ≥ 1.0)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another autogenv2 source tree to time (its src)")
    parser.add_argument("--venv", type=Path, default=scale.DEFAULT_VENV)
    parser.add_argument("--keep", type=Path, help="build the trees here and keep them")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = args.keep or Path(tempfile.mkdtemp(prefix="ag2-edit-"))
    results = {}
    try:
        for n in sorted(args.sizes):
            results[n] = measure(n, work / f"n{n}", args)
        report(results)
    finally:
        scale.stop_mq_daemons(work)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
