"""``autogenv2 inspect RUN_DIR``: what happened to each QWalk run in a directory, without gosling.

A run is one input file (QWalk's run id); a directory may hold several. The report is plain
JSON-ready data::

    {"runs": [{"run_id": "qw.dmc", "state": "complete", "reason": "...",
               "methods": [{"method": "dmc", "energy": -1.1747, "error": 0.0025, "blocks": 20}]}]}

with one ``methods`` entry per METHOD section, in input order. Stdout and the exit code are taken
from the arguments, else from a ``run_meta.json`` naming the run, else from ``stdout.txt`` /
``stderr.txt`` and the exit marker autogenv2's launcher writes (``.autogenv2/<token>.exit``);
without them the run is judged from its files alone. The input is read with our own QWalk syntax
(:mod:`.lint`): unknown or misspelt keywords, which QWalk silently ignores, make the run failed.

``state`` is the Reader's verdict (what ``autogenv2 run`` would do next), made by :mod:`.verdict` with
the Reader's default settings, without building the pydantic Reader; two separate questions are
answered beside it, each with its reason:

* ``finished``: QWalk ended normally -- every METHOD section has its ``Wall time`` line, no
  ``Error`` on stdout, and every VMC/DMC wrote the blocks its NBLOCK asks for;
* ``sufficient``: the numbers are enough -- at least ``min_blocks`` (10) blocks after warm-up and
  a reliable error bar for VMC/DMC, convergence for OPTIMIZE/LINEAR.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...sampling import Need
from .rundir import find_runs, find_streams
from .verdict import (
    OPTIMIZERS,
    SAMPLING,
    Outcome,
    RunFiles,
    Settings,
    converged,
    judge,
    load_run,
    reported_section,
)

METHOD_KEYS = ("method", "energy", "error", "blocks")
QWALK_NBLOCK = 100


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
    settings = Settings()  # the Reader's defaults, without building the pydantic model
    result, methods, needs = judge(run, code, settings)
    finished, finished_reason = finished_state(run, result)
    sufficient, sufficient_reason = sufficient_state(run, methods, needs, settings)
    return {"run_id": run_id, "state": result.verdict.value, "reason": result.reason, "exit_code": code,
            "finished": finished, "finished_reason": finished_reason,
            "sufficient": sufficient, "sufficient_reason": sufficient_reason,
            "methods": [{key: m.get(key) for key in METHOD_KEYS} for m in methods]}


def finished_state(run: RunFiles, result: Outcome) -> tuple[bool, str]:
    """Whether QWalk ended normally with every block its input asks for, and why (not)."""
    n = len(run.kinds)
    if not n or run.out.finished < n or run.streams.errors:
        return False, result.reason
    blocks = []
    for i, kind in enumerate(run.kinds):
        if kind not in SAMPLING:
            continue
        spec = run.specs[i] if i < len(run.specs) else None
        asked_text = spec.get("NBLOCK") if spec else None
        asked = int(asked_text) if asked_text and asked_text.isdigit() else QWALK_NBLOCK
        series = run.log.series.get(run.label(i))
        have = series.nblocks if series is not None else 0
        if have < asked:
            return False, f"METHOD {i + 1} ({kind}) ended after {have} of the {asked} blocks it asks for"
        blocks.append(f"{have} blocks of {run.label(i)}")
    text = f"QWalk ended normally: {n} METHOD section{'s' if n > 1 else ''} finished"
    return True, text + (f" ({', '.join(blocks)})" if blocks else "")


def sufficient_state(run: RunFiles, methods: list[dict[str, Any]], needs: list[Need | None],
                     settings: Settings) -> tuple[bool, str]:
    """Whether the reported METHOD's numbers are enough (blocks and a reliable error; convergence)."""
    i = reported_section(run, settings.method)
    if i is None or i >= len(methods):
        return False, "no METHOD section"
    kind, res = run.kinds[i], dict(methods[i])
    where = f"METHOD {i + 1} ({kind})"
    if kind in SAMPLING:
        if not res.get("blocks") or res.get("energy") is None:
            return False, f"{where}: no blocks with a finite energy"
        need = needs[i] if i < len(needs) else None
        if need is not None and not need.done:
            return False, f"{where}: {need.why}"
        if res.get("reliable") is False:
            return False, f"{where}: the error bar is not reliable: {res.get('unreliable_reason')}"
        used = int(res["blocks"]) - int(res.get("warmup") or 0)
        error = "no error bar" if res.get("error") is None else f"error {res['error']:.2g} Ha"
        least = settings.limits.min_blocks
        return True, f"{where}: {used} blocks after warm-up (min_blocks={least}), {error}"
    if kind in OPTIMIZERS:
        if run.final_vmc(i + 1) and run.out.finished <= i + 1:
            return False, f"METHOD {i + 2} (VMC), of the wave function {kind} hands on, did not finish"
        if converged(run, i):
            return True, f"{where}: converged (last change within {2:g} error bars)"
        return False, f"{where}: not converged after {len(res.get('iterations') or [])} iterations"
    if kind == "POSTPROCESS":
        ok = res.get("energy") is not None
        return ok, f"{where}: " + ("energy written" if ok else "no energy in the .json")
    if kind == "TEST":
        ok = bool(res.get("checks")) and not res.get("failed")
        return ok, f"{where}: {res.get('checks') or 0} checks, {res.get('failed') or 0} failed"
    return False, f"{where}: method {kind} is not judged"


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
        for key in ("finished", "sufficient"):
            if key in run:
                lines.append(f"  {key}: {'yes' if run[key] else 'no'} - {run[key + '_reason']}")
        lines.append(f"  {'#':>1}  {'method':<10} {'energy (Ha)':>14} {'error (Ha)':>14} {'blocks':>7}")
        for i, m in enumerate(run["methods"], 1):
            blocks = "-" if m["blocks"] is None else str(m["blocks"])
            lines.append(f"  {i:>1}  {m['method']:<10} {_number(m['energy'], 6):>14} "
                         f"{_number(m['error'], 6):>14} {blocks:>7}")
    return "\n".join(lines)
