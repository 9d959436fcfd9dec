"""``autogenv2 inspect RUN_DIR``: what happened to each QWalk run in a directory, without gosling.

A run is one input file (QWalk's run id); a directory may hold several. The report is plain
JSON-ready data::

    {"runs": [{"run_id": "qw.dmc", "state": "complete", "reason": "...",
               "methods": [{"method": "dmc", "energy": -1.1747, "error": 0.0025, "blocks": 20}]}]}

with one ``methods`` entry per METHOD section, in input order. Stdout and the exit code are taken
from the arguments, else from a ``run_meta.json`` naming the run, else from ``stdout.txt`` /
``stderr.txt`` when present; without them the run is judged from its files alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .reader import QWalkReader, find_runs, find_streams, judge, load_run

METHOD_KEYS = ("method", "energy", "error", "blocks")


def inspect_run(run_dir: Path, run_id: str | None = None, stdout: Path | None = None,
                exit_code: int | None = None) -> dict[str, Any]:
    """The report of every run in ``run_dir`` (or only ``run_id``); see the module docstring."""
    run_dir = Path(run_dir)
    runs = [run_id] if run_id else find_runs(run_dir)
    return {"runs": [_inspect_one(run_dir, rid, stdout, exit_code) for rid in runs]}


def _inspect_one(run_dir: Path, run_id: str, stdout: Path | None, exit_code: int | None) -> dict[str, Any]:
    out_text, err_text, meta_code = find_streams(run_dir, run_id)
    if stdout is not None:
        out_text = Path(stdout).read_text(errors="replace") if Path(stdout).is_file() else ""
        err_text = ""
    code = exit_code if exit_code is not None else meta_code
    run = load_run(run_dir, run_id, out_text, err_text, variance=False)
    result, methods = judge(run, code, QWalkReader(run_id=run_id))
    return {"run_id": run_id, "state": result.verdict.value, "reason": result.reason,
            "methods": [{key: m.get(key) for key in METHOD_KEYS} for m in methods]}


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(report: dict[str, Any]) -> str:
    """Human-readable form of :func:`inspect_run`'s report.

    >>> print(format_table({"runs": [{"run_id": "qw.vmc", "state": "complete", "reason": "ok",
    ...     "methods": [{"method": "vmc", "energy": -1.1, "error": 0.01, "blocks": 20}]}]}))
    qw.vmc: complete - ok
      #  method        energy (Ha)     error (Ha)  blocks
      1  vmc             -1.100000       0.010000      20
    """
    if not report.get("runs"):
        return "no QWalk runs found"
    lines: list[str] = []
    for run in report["runs"]:
        lines.append(f"{run['run_id']}: {run['state']} - {run['reason']}")
        lines.append(f"  {'#':>1}  {'method':<10} {'energy (Ha)':>14} {'error (Ha)':>14} {'blocks':>7}")
        for i, m in enumerate(run["methods"], 1):
            blocks = "-" if m["blocks"] is None else str(m["blocks"])
            lines.append(f"  {i:>1}  {m['method']:<10} {_number(m['energy'], 6):>14} "
                         f"{_number(m['error'], 6):>14} {blocks:>7}")
    return "\n".join(lines)
