"""Benchmark: our QWalk log parsing + reblocking (``inspect``) against QWalk's ``gosling``.

Builds a ~48 MB ``.log`` by repeating the blocks of a recorded case (default ``dmc_h2``) in a
temporary run directory, then measures, each in a fresh process, the wall time and peak RSS of

* ``inspect_run(run_dir)`` (interpreter start and imports included),
* ``autogenv2 inspect <dir> --json``, the whole command as typed,
* ``gosling -json <log>`` when a gosling binary is found ($AUTOGENV2_GOSLING, PATH, /opt/qwalk/bin),

interleaved (``--repeat`` rounds after one untimed warm-up round; medians reported, with the range),
and, in this process, the parse + reblock time alone (best of ``--repeat``) and its cost per MB.
``--before SRC`` adds ``autogenv2 inspect`` from another source tree (e.g. a worktree of main) to the
same rounds. The children run with Python's bytecode caches, as an installed package does (a fresh
``PYTHONPYCACHEPREFIX``, written in the warm-up); ``--environment-as-is`` keeps this environment's
settings instead (where PYTHONDONTWRITEBYTECODE=1 is set, every run compiles autogenv2's modules).
Issue 8's goal: inspect at least 5x faster than gosling and at most 100 MB RSS on a 48 MB log.

Run: ``python benchmarks/qwalk_reader.py [--size-mb 48] [--repeat 7] [--case dmc_h2] [--before SRC]``.
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
CASES = REPO / "tests" / "data" / "qwalk" / "cases"
"""Recorded cases (``--case``); ``$AUTOGENV2_SHARED/qwalk/cases`` when that is set."""
sys.path.insert(0, str(REPO / "src"))

# Runs argv[1:] as its only child and reports that child's wall time and peak RSS.
MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
                  "code": proc.returncode,
                  "stdout": proc.stdout.decode(errors="replace")[-4000:]}))
"""

INSPECT = """
import json, sys, time
start = time.perf_counter()
from autogenv2.codes.qwalk.inspect import inspect_run
imported = time.perf_counter()
report = inspect_run(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "inspect_s": done - imported, "report": report}))
"""


def find_gosling() -> str | None:
    for candidate in (os.environ.get("AUTOGENV2_GOSLING"), shutil.which("gosling"), "/opt/qwalk/bin/gosling"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def build_run(case: Path, directory: Path, size_mb: float) -> tuple[Path, int]:
    """A run directory whose .log repeats ``case``'s blocks up to ``size_mb`` MB; (log, blocks)."""
    log = next(case.glob("*.log"))
    run_id = log.name[:-4]
    for name in (run_id, f"{run_id}.o"):
        shutil.copyfile(case / name, directory / name)
    text = log.read_bytes()
    first = text.index(b"block {")
    head, blocks = text[:first], text[first:]
    copies = max(int(size_mb * 1e6 // len(blocks)), 1)
    target = directory / log.name
    with open(target, "wb") as out:
        out.write(head)
        out.writelines(blocks for _ in range(copies))
    return target, copies * blocks.count(b"block {")


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout)


def interleaved(commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int) -> dict[str, list[dict]]:
    """``repeat`` rounds, each running every command once (a shared machine's load hits all alike), after
    one untimed round (bytecode caches written, the log in the page cache)."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for timed in [False] + [True] * repeat:
        for name, (argv, env) in commands.items():
            result = measure(argv, env)
            if timed:
                runs[name].append(result)
    return runs


def child_env(src: Path, tmp: str, as_is: bool) -> dict[str, str]:
    """The environment of an ``autogenv2`` child importing from ``src``; see the module docstring."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache" / src.as_posix().strip("/").replace("/", "_"))
    return env


def median(runs: list[dict]) -> dict:
    """The run of median wall time, with the median CPU time and the largest peak RSS seen."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    cpu = sorted(r["cpu"] for r in runs)[len(runs) // 2]
    return {**ordered[len(runs) // 2], "cpu": cpu, "rss_mb": max(r["rss_mb"] for r in runs)}


def spread(runs: list[dict]) -> str:
    walls = [r["wall"] for r in runs]
    return f"{min(walls):.3f}-{max(walls):.3f}"


def in_process(log: Path, repeat: int) -> tuple[float, float, dict]:
    from autogenv2.codes.qwalk import logparse
    from autogenv2.codes.qwalk.reader import summarize

    times: dict[str, list[float]] = {"parse": [], "cpu": [], "reblock": []}
    summary: dict = {}
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        data = logparse.parse_log(log, variance=False)
        parsed = time.perf_counter()
        times["cpu"].append(time.process_time() - cpu)
        summary = summarize(next(iter(data.series.values())))
        times["parse"].append(parsed - start)
        times["reblock"].append(time.perf_counter() - parsed)
    print(f"in-process parse   : {min(times['parse']):.3f} s wall, {min(times['cpu']):.3f} s CPU  "
          f"({1e3 * min(times['cpu']) / (log.stat().st_size / 1e6):.2f} ms CPU per MB)")
    return min(times["parse"]), min(times["reblock"]), summary


def commands_for(tmp: str, log: Path, args: argparse.Namespace,
                 gosling: str | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The commands timed side by side, each with its environment."""
    env = child_env(REPO / "src", tmp, args.environment_as_is)
    cli = [sys.executable, "-m", "autogenv2", "inspect", tmp, "--json"]
    commands = {"inspect_run": ([sys.executable, "-c", INSPECT, tmp], env), "cli": (cli, env)}
    if args.before:
        commands["before"] = (cli, child_env(args.before.resolve(), tmp, args.environment_as_is))
    if gosling is not None:
        commands["gosling"] = ([gosling, "-json", str(log)], dict(os.environ))
    return commands


def report(runs: dict[str, list[dict]], gosling: str | None, parse_s: float, reblock_s: float,
           summary: dict) -> None:
    ours, cli = median(runs["inspect_run"]), median(runs["cli"])
    detail = json.loads(ours["stdout"])
    print(f"inspect (process)  : {ours['wall']:.3f} s wall, {ours['cpu']:.3f} s CPU, "
          f"peak RSS {ours['rss_mb']:.1f} MB "
          f"(imports {detail['import_s']:.3f} s, inspect_run {detail['inspect_s']:.3f} s)")
    print(f"autogenv2 inspect  : {cli['wall']:.3f} s wall ({spread(runs['cli'])}), "
          f"{cli['cpu']:.3f} s CPU, peak RSS {cli['rss_mb']:.1f} MB (the whole command as typed)")
    before = median(runs["before"]) if "before" in runs else None
    if before is not None:
        same = {r["stdout"] for r in runs["before"] + runs["cli"]}
        print(f"  before (--before) : {before['wall']:.3f} s wall ({spread(runs['before'])}), "
              f"{before['cpu']:.3f} s CPU, peak RSS {before['rss_mb']:.1f} MB; "
              f"output {'identical' if len(same) == 1 else 'DIFFERENT'}")
    if gosling is None:
        print("gosling: not found ($AUTOGENV2_GOSLING, PATH, /opt/qwalk/bin/gosling); no comparison")
        return
    theirs = median(runs["gosling"])
    energy = json.loads(theirs["stdout"].split("}\n{")[0])["properties"]["total_energy"]["value"][0] \
        if theirs["code"] == 0 else float("nan")
    print(f"gosling (process)  : {theirs['wall']:.3f} s wall ({spread(runs['gosling'])}), "
          f"{theirs['cpu']:.3f} s CPU, peak RSS {theirs['rss_mb']:.1f} MB, "
          f"E = {energy:.9f}  ({gosling})")
    print(f"speed-up: {theirs['wall'] / ours['wall']:.1f}x end to end (wall), "
          f"{theirs['cpu'] / ours['cpu']:.1f}x end to end (CPU), "
          f"{theirs['wall'] / (parse_s + reblock_s):.1f}x vs in-process parse+reblock; "
          f"memory: {theirs['rss_mb'] / ours['rss_mb']:.1f}x less")
    for name, run in (("autogenv2 inspect", cli), ("before", before)):
        if run is not None:
            print(f"whole command: gosling ÷ {name} = {theirs['wall'] / run['wall']:.2f}x (wall), "
                  f"{theirs['cpu'] / run['cpu']:.2f}x (CPU)  [goal ≥ 5]")
    print(f"|E_ours - E_gosling| = {abs(summary['energy'] - energy):.1e} Ha")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=48.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--case", default="dmc_h2", help="folder in tests/data/qwalk/cases")
    parser.add_argument("--before", type=Path, help="src directory of another autogenv2 tree to compare")
    parser.add_argument("--environment-as-is", action="store_true",
                        help="no bytecode caches of our own: run the children in this environment as it is")
    args = parser.parse_args(argv)
    shared = os.environ.get("AUTOGENV2_SHARED")
    case = (Path(shared) / "qwalk" / "cases" if shared else CASES) / args.case
    if not case.is_dir():
        print(f"case {case} not found (set AUTOGENV2_SHARED)")
        return 1
    with tempfile.TemporaryDirectory(prefix="qwalk_bench_") as tmp:
        log, nblocks = build_run(case, Path(tmp), args.size_mb)
        print(f"log: {log.stat().st_size / 1e6:.1f} MB, {nblocks} blocks (case {args.case} repeated)")
        parse_s, reblock_s, summary = in_process(log, args.repeat)
        print(f"in-process reblock : {reblock_s:.4f} s   E = {summary['energy']:.9f} "
              f"+/- {summary['error']:.3g}  (warm-up {summary['warmup']})")
        gosling = find_gosling()
        commands = commands_for(tmp, log, args, gosling)
        print(f"{args.repeat} interleaved runs of each, load average {os.getloadavg()[0]:.2f} before, "
              + ("environment as it is" if args.environment_as_is else "with bytecode caches"))
        runs = interleaved(commands, args.repeat)
        print(f"load average {os.getloadavg()[0]:.2f} after")
        report(runs, gosling, parse_s, reblock_s, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
