"""Benchmark: start-up of the everyday commands, the quick path against the full CLI, side by side.

``autogenv2 --help``, ``status``, ``status --plain`` and ``results -f csv`` on a finished toy ensemble
are timed as whole processes (wall time, output to /dev/null), each once through the quick path
(quick.py: no typer, pydantic or pandas) and once through the full typer CLI (``--traceback`` sends any
command there), interleaved in every repetition. Prints the median of each, their ratio (full ÷ quick)
and the machine's load average.

    python benchmarks/startup.py                 # 10 repetitions, 20 jobs
    python benchmarks/startup.py --repeat 30 --jobs 200
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAN = """root = "runs"
[[steps]]
name = "mc"
code = "toy"
method = "mc"
nblocks = 20
seconds_per_block = 0.0
[[scans]]
id = "j{{i}}"
vary = {{ i = {ids} }}
"""
COMMANDS = {"--help": ["--help"], "status": ["status", "plan.toml"],
            "status --plain": ["status", "plan.toml", "--plain"],
            "results -f csv": ["results", "plan.toml", "-f", "csv"]}


def wall(args: list[str], cwd: Path) -> float:
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autogenv2", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "plan.toml").write_text(PLAN.format(ids=list(range(options.jobs))))
        subprocess.run([sys.executable, "-m", "autogenv2", "run", "plan.toml", "--watch", "--interval",
                        "0.2"], cwd=base, check=True, stdout=subprocess.DEVNULL)
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(options.repeat):
            for name, args in COMMANDS.items():
                times.setdefault((name, "quick"), []).append(wall(args, base))
                full = ["--traceback", *args] if args != ["--help"] else ["--traceback", "--help"]
                times.setdefault((name, "full"), []).append(wall(full, base))
    print(f"load average {os.getloadavg()[0]:.2f}; median of {options.repeat}; {options.jobs} jobs")
    print(f"{'command':<16} {'quick s':>8} {'full s':>8} {'full/quick':>10}")
    for name in COMMANDS:
        quick, full = (statistics.median(times[(name, kind)]) for kind in ("quick", "full"))
        print(f"{name:<16} {quick:>8.3f} {full:>8.3f} {full / quick:>10.2f}")


if __name__ == "__main__":
    main()
