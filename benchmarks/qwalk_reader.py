"""Benchmark: our QWalk log parsing + reblocking (``inspect``) against QWalk's ``gosling``.

Builds a ~48 MB ``.log`` by repeating the blocks of a recorded case (default ``dmc_h2``) in a
temporary run directory, then measures, each in a fresh process, the wall time and peak RSS of

* ``inspect_run(run_dir)`` (interpreter start and imports included),
* ``autogenv2 inspect <dir> --json``, the whole command as typed,
* ``gosling -json <log>`` when a gosling binary is found ($AUTOGENV2_GOSLING, PATH, /opt/qwalk/bin),

interleaved (``--repeat`` rounds; medians reported, with the range), and, in this process, the
parse + reblock time alone (best of ``--repeat``) and its cost per MB.
Issue 8's goal: inspect at least 5x faster than gosling and at most 100 MB RSS on a 48 MB log.

Run: ``python benchmarks/qwalk_reader.py [--size-mb 48] [--repeat 7] [--case dmc_h2]``.
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


def interleaved(commands: dict[str, list[str]], env: dict[str, str], repeat: int) -> dict[str, list[dict]]:
    """``repeat`` rounds, each running every command once (a shared machine's load hits all alike)."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            runs[name].append(measure(argv, env))
    return runs


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=48.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--case", default="dmc_h2", help="folder in tests/data/qwalk/cases")
    args = parser.parse_args(argv)
    shared = os.environ.get("AUTOGENV2_SHARED")
    case = (Path(shared) / "qwalk" / "cases" if shared else CASES) / args.case
    if not case.is_dir():
        print(f"case {case} not found (set AUTOGENV2_SHARED)")
        return 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="qwalk_bench_") as tmp:
        log, nblocks = build_run(case, Path(tmp), args.size_mb)
        size_mb = log.stat().st_size / 1e6
        print(f"log: {size_mb:.1f} MB, {nblocks} blocks (case {args.case} repeated)")

        parse_s, reblock_s, summary = in_process(log, args.repeat)
        print(f"in-process reblock : {reblock_s:.4f} s   E = {summary['energy']:.9f} "
              f"+/- {summary['error']:.3g}  (warm-up {summary['warmup']})")

        gosling = find_gosling()
        commands = {"inspect_run": [sys.executable, "-c", INSPECT, tmp],
                    "cli": [sys.executable, "-m", "autogenv2", "inspect", tmp, "--json"]}
        if gosling is not None:
            commands["gosling"] = [gosling, "-json", str(log)]
        print(f"{args.repeat} interleaved runs of each, load average {os.getloadavg()[0]:.2f} before")
        runs = interleaved(commands, env, args.repeat)
        print(f"load average {os.getloadavg()[0]:.2f} after")
        ours, cli = median(runs["inspect_run"]), median(runs["cli"])
        detail = json.loads(ours["stdout"])
        print(f"inspect (process)  : {ours['wall']:.3f} s wall, {ours['cpu']:.3f} s CPU, "
              f"peak RSS {ours['rss_mb']:.1f} MB "
              f"(imports {detail['import_s']:.3f} s, inspect_run {detail['inspect_s']:.3f} s)")
        print(f"autogenv2 inspect  : {cli['wall']:.3f} s wall ({spread(runs['cli'])}), "
              f"{cli['cpu']:.3f} s CPU, peak RSS {cli['rss_mb']:.1f} MB (the whole command as typed)")
        if gosling is None:
            print("gosling: not found ($AUTOGENV2_GOSLING, PATH, /opt/qwalk/bin/gosling); no comparison")
            return 0
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
        print(f"whole command: gosling ÷ autogenv2 inspect = {theirs['wall'] / cli['wall']:.1f}x (wall), "
              f"{theirs['cpu'] / cli['cpu']:.1f}x (CPU)  [goal ≥ 5]")
        print(f"|E_ours - E_gosling| = {abs(summary['energy'] - energy):.1e} Ha")
    return 0


if __name__ == "__main__":
    sys.exit(main())
